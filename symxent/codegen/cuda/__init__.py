"""The CUDA target of the generator: ``codegen/cuda/NAME.cu`` and the kernels' loader.

- :mod:`.printer`: :class:`CudaPrinter`, the generator's C printer with CUDA's spellings;
- :mod:`.target`: :class:`CudaTarget` (printer, rules, templates) rendering lowered functions
  into ``templates/rows.tmpl.cu`` (row losses and maps, one row per thread-block cluster) and
  ``templates/elementwise.tmpl.cu``;
- :mod:`.losses`: :data:`CUDA_LOSSES`, the kernels generated (with the z-loss on cross-entropy);
- :mod:`.generate`: :func:`generate_cuda`, :func:`cuda_files` (the one driver's ``generate(..., "cuda")``);
- :mod:`.loader`: :func:`load_cuda_kernel` (compiled at first use, cached on disk);
- :mod:`.autograd`: the autograd functions ``symxent.functional`` uses for ``backend="cuda"``
  (imports torch; import it explicitly).

Importing this package does not import torch (its names load their modules on first use).
"""
import importlib

_EXPORTS = {
    "cuda_files": "generate", "generate_cuda": "generate",
    "compile_cuda_loss": "loader", "load_cuda_kernel": "loader", "unavailable_reason": "loader",
    "CUDA_LOSSES": "losses", "user_loss_examples": "losses", "user_loss_params": "losses",
    "CudaPrinter": "printer", "CudaTarget": "target",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
