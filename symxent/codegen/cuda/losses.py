"""What the CUDA target generates: the kernels of the one catalogue (:data:`symxent.codegen.KERNELS`) that
it can express (``driver.kernels_for("cuda")``: the losses, not the vocab-parallel shard kernels), and the
user losses of ``codegen/user_losses.py`` as examples through the same row template.
"""
from __future__ import annotations

from ..driver import kernels_for
from ..loss import KERNELS, Loss

#: the kernels of ``codegen/cuda/`` by name
CUDA_LOSSES = {name: KERNELS[name] for name in kernels_for("cuda")}


def user_loss_examples() -> dict:
    """The user-defined row losses of code generation I (``symxent.codegen.user_losses.USER_LOSSES``:
    focal loss, z-loss, logit soft-capping), each a :class:`Loss` from its formula; they go through
    the same row template as cross-entropy. Their parameters: ``user_loss_params()``."""
    from ..user_losses import USER_LOSSES
    return {name: Loss.from_formula(formula, name=name) for name, (formula, _, _) in USER_LOSSES.items()}


def user_loss_params() -> dict:
    """Example parameter values of :func:`user_loss_examples` (e.g. ``{"focal": {"gamma": 2.0}}``)."""
    from ..user_losses import USER_LOSSES
    return {name: dict(params) for name, (_, params, _) in USER_LOSSES.items()}
