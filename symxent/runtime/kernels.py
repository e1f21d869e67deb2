"""The generated kernel of a name for a backend, from the checked-in generated package.

``load_kernel("cross_entropy", "c")`` imports ``symxent_codegen.c.cross_entropy`` (whose C source is
compiled at first use) and returns its entry function; nothing here knows how the kernels were made.
"""
from __future__ import annotations

import functools
import importlib

#: the backends whose kernels are plain functions of arrays (CUDA kernels go through symxent.functional)
BACKENDS = ("numpy", "torch", "c", "triton")


@functools.lru_cache(maxsize=None)
def load_kernel(name: str, backend: str):
    """The generated kernel ``name`` for ``backend`` (``numpy``, ``torch``, ``c``), cached per process."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not name.isidentifier():
        raise KeyError(f"unknown kernel {name!r}")
    try:
        module = importlib.import_module(f"symxent_codegen.{backend}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"symxent_codegen.{backend}.{name}":
            raise
        raise KeyError(f"unknown kernel {name!r} for backend {backend!r}: no generated module "
                       f"symxent_codegen.{backend}.{name} (regenerate with: symxent codegen --all)") from None
    return getattr(module, name)
