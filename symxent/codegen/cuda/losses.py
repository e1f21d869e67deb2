"""What the CUDA target generates: the generator's catalogue (:data:`symxent.codegen.LOSSES`)
with PaLM's z-loss on the two cross-entropies, and code generation I's user losses as examples.

The z-loss adds ``lse_square_scale * logsumexp(z)**2`` to each row's loss (an ordinary part of
the row loss: derived, rewritten and printed like the rest; ``mean`` divides it by the same
total weight W as the cross-entropy, which without class weights is the number of counted rows).
Its case ``label_smoothing == 0 and lse_square_scale == 0`` is the plain cross-entropy.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from ... import definitions as d
from ..loss import LOSSES, Arg, Case, Loss

#: the z-loss coefficient (``lse_square_scale`` in Liger-Kernel and flash-attn)
LSE_SQUARE_SCALE = sp.Symbol("lse_square_scale", nonnegative=True)
WITH_Z_LOSS = ("cross_entropy", "cross_entropy_prob")


def with_z_loss(loss: Loss) -> Loss:
    """``loss`` with the scalar argument ``lse_square_scale`` and ``+ lse_square_scale * logsumexp(z)**2``
    in its general case; its special cases hold when ``lse_square_scale == 0``. A loss that already
    has the argument (the generator's catalogue may adopt it) is returned unchanged."""
    if any(a.name == "lse_square_scale" for a in loss.args):
        return loss
    z = d.SymbolicVector(loss.wrt)
    term = LSE_SQUARE_SCALE * d.logsumexp(z) ** 2
    cases = tuple(Case(case.when + (("lse_square_scale", 0),), case.expr) if case.when else Case((), case.expr + term)
                  for case in loss.cases)
    args = loss.args + (Arg("lse_square_scale", "scalar", LSE_SQUARE_SCALE),)
    doc = f"{loss.doc} + lse_square_scale * logsumexp(z)^2"
    return dataclasses.replace(loss, args=args, cases=cases, doc=doc)


def _catalogue() -> dict:
    return {name: with_z_loss(loss) if name in WITH_Z_LOSS else loss for name, loss in LOSSES.items()}


#: the kernels of ``codegen/cuda/`` by name
CUDA_LOSSES = _catalogue()


def user_loss_examples() -> dict:
    """The user-defined row losses of code generation I (``symxent.codegen.conformance.USER_LOSSES``:
    focal loss, z-loss, logit soft-capping), each a :class:`Loss` from its formula; they go through
    the same row template as cross-entropy. Their parameters: ``user_loss_params()``."""
    from ..conformance import USER_LOSSES
    return {name: Loss.from_formula(formula, name=name) for name, (formula, _, _) in USER_LOSSES.items()}


def user_loss_params() -> dict:
    """Example parameter values of :func:`user_loss_examples` (e.g. ``{"focal": {"gamma": 2.0}}``)."""
    from ..conformance import USER_LOSSES
    return {name: dict(params) for name, (_, params, _) in USER_LOSSES.items()}
