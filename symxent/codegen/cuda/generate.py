"""The CUDA target's sources through the one driver (``symxent.codegen.driver``): a built-in kernel by name
(:data:`~symxent.codegen.cuda.losses.CUDA_LOSSES`) or a user :class:`~symxent.codegen.loss.Loss`.
``symxent codegen --all`` writes (and ``--check`` checks) ``codegen/cuda/`` with every other target.
"""
from __future__ import annotations

from ..driver import generate, generate_files


def cuda_files(name_or_loss) -> dict:
    """``{"NAME.cu": source}`` of a built-in kernel (by name) or of a user :class:`Loss`."""
    return generate_files(name_or_loss, "cuda")


def generate_cuda(name_or_loss) -> str:
    """The CUDA source text of one kernel."""
    return generate(name_or_loss, "cuda")
