"""The CUDA target's pipeline, on the generator's public stages:

    loss -> derivation -> proved stable rewrites -> lowering   (symxent.codegen.driver.lowered_functions,
                                                                 with the C target's rules)
         -> CudaTarget.render: printed math in kernel templates (symxent.codegen.cuda.target)

``write_cuda("codegen")`` writes ``codegen/cuda/NAME.cu`` for every kernel of :data:`CUDA_LOSSES`
(``check=True``: only report drift).
"""
from __future__ import annotations

from pathlib import Path

from ..driver import as_loss, lowered_functions
from ..loss import Loss
from .losses import CUDA_LOSSES
from .target import CudaTarget


def as_cuda_loss(name_or_loss) -> Loss:
    return as_loss(name_or_loss, CUDA_LOSSES, "CUDA kernel")


def cuda_files(name_or_loss) -> dict:
    """``{"NAME.cu": source}`` of a built-in kernel (by name) or of a user :class:`Loss`."""
    loss, target = as_cuda_loss(name_or_loss), CudaTarget()
    return target.render(loss, lowered_functions(loss, target))


def generate_cuda(name_or_loss) -> str:
    """The CUDA source text of one kernel."""
    return next(iter(cuda_files(name_or_loss).values()))


def write_cuda(root="codegen", check: bool = False, names=None) -> list:
    """Write ``root/cuda/NAME.cu`` for each kernel (all of :data:`CUDA_LOSSES` by default).

    ``check=True`` writes nothing and returns the paths that differ from what would be generated
    (missing files included); otherwise returns the paths written (unchanged files are skipped).
    """
    root = Path(root)
    changed = []
    for name in (names or sorted(CUDA_LOSSES)):
        for filename, text in cuda_files(name).items():
            path = root / "cuda" / filename
            if path.exists() and path.read_text() == text:
                continue
            changed.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return changed
