"""The CUDA target of the generator: ``codegen/cuda/NAME.cu`` and its contract ``NAME.py``.

- :mod:`.printer`: :class:`CudaPrinter`, the generator's C printer with CUDA's spellings;
- :mod:`.target`: :class:`CudaTarget` (printer, rules, templates) rendering lowered functions
  into ``templates/rows.tmpl.cu`` (row losses and maps, one row per thread-block cluster) and
  ``templates/elementwise.tmpl.cu``, and each kernel's contract (``templates/cuda_binding.tmpl.py``);
- :mod:`.losses`: :data:`CUDA_LOSSES`, the kernels generated (with the z-loss on cross-entropy);
- :mod:`.generate`: :func:`generate_cuda`, :func:`cuda_files` (the one driver's ``generate(..., "cuda")``),
  and a user loss generated and compiled (:func:`compile_cuda_loss`, :func:`user_row_loss`).

Compiling, caching and calling the kernels is the runtime's (:mod:`symxent.runtime.cuda`,
:mod:`symxent.runtime.cuda_autograd`), which never imports this package.
Importing this package does not import torch (its names load their modules on first use).
"""
import importlib

_EXPORTS = {
    "cuda_files": "generate", "generate_cuda": "generate", "compile_cuda_loss": "generate", "user_row_loss": "generate",
    "CUDA_LOSSES": "losses", "user_loss_examples": "losses", "user_loss_params": "losses",
    "CudaPrinter": "printer", "CudaTarget": "target",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
