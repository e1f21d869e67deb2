"""What the CUDA target generates: the generator's catalogue (:data:`symxent.codegen.LOSSES`)
with PaLM's z-loss on the two cross-entropies, and code generation I's user losses as examples.

The z-loss adds ``lse_square_scale * logsumexp(z)**2`` to each row's loss (an ordinary part of
the row loss: derived, rewritten and printed like the rest; ``mean`` divides it by the same
total weight W as the cross-entropy, which without class weights is the number of counted rows).
Its case ``label_smoothing == 0 and lse_square_scale == 0`` is the plain cross-entropy.
"""
from __future__ import annotations

from ..loss import LOSSES, LSE_SQUARE_SCALE, Loss, with_z_loss  # noqa: F401 (re-exported)

def _catalogue() -> dict:
    return dict(LOSSES)  # the generator's catalogue: its cross-entropies carry the z-loss already


#: the kernels of ``codegen/cuda/`` by name
CUDA_LOSSES = _catalogue()


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
