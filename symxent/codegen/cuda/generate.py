"""The CUDA target's sources through the one driver (``symxent.codegen.driver``): a built-in kernel by name
(:data:`~symxent.codegen.cuda.losses.CUDA_LOSSES`) or a user :class:`~symxent.codegen.loss.Loss`.
``symxent codegen --all`` writes (and ``--check`` checks) ``codegen/cuda/`` with every other target.

A user loss is generated here and handed to the runtime (:mod:`symxent.runtime.cuda`) with its contract:
:func:`compile_cuda_loss`, :func:`user_row_loss`.
"""
from __future__ import annotations

import functools

from ..driver import generate, generate_files, target_registry
from ..loss import Loss


def cuda_files(name_or_loss) -> dict:
    """``{"NAME.cu": source, "NAME.py": contract}`` of a built-in kernel (by name) or of a user :class:`Loss`."""
    return generate_files(name_or_loss, "cuda")


def generate_cuda(name_or_loss) -> str:
    """The CUDA source text of one kernel."""
    return generate(name_or_loss, "cuda")


@functools.lru_cache(maxsize=None)
def compile_cuda_loss(loss: Loss):
    """A user loss's kernel (e.g. ``Loss.from_formula``): generated, then compiled by the runtime at first
    use (cached on disk, and per process by the loss)."""
    from ...runtime.cuda import CudaContract, compile_kernel

    contract = CudaContract(**target_registry()["cuda"].contract(loss))
    return compile_kernel(contract, generate_cuda(loss))


def user_row_loss(loss: Loss, input, target, params=None, *, ignore_index=-100, reduction="mean",
                  inplace_backward=False):
    """A user-defined row loss (``Loss.from_formula`` / ``Loss.from_expr``) of (R, C) CUDA logits and (R,)
    targets through the runtime's autograd; ``mean`` divides by the number of non-ignored rows."""
    from ...runtime.cuda_autograd import row_loss

    return row_loss(compile_cuda_loss(loss), input, target, None, options=params, ignore_index=ignore_index,
                    reduction=reduction, inplace_backward=inplace_backward)
