"""Backend choice and kernel loading for :mod:`symxent.functional`.

Backends: ``"numpy"`` and ``"c"`` take NumPy arrays and never import torch; ``"torch"`` takes tensors and
differentiates with autograd through a torch.library custom op; ``"cuda"`` is reserved for the generated
CUDA kernels (not available yet). The default is ``"torch"`` for tensors and ``"numpy"`` for anything else.
"""
from __future__ import annotations

import sys

BACKENDS = ("numpy", "torch", "c", "cuda")
ARRAY_BACKENDS = ("numpy", "c")


def is_tensor(value) -> bool:
    """True for a torch.Tensor (without importing torch: a tensor implies torch is loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def resolve_backend(backend, input) -> str:
    """The backend to run: the one asked for (checked against the input's kind) or the default."""
    if backend is None:
        return "torch" if is_tensor(input) else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(map(repr, BACKENDS))}")
    if backend == "cuda":
        raise NotImplementedError(
            "the 'cuda' backend is not available yet (it comes with the generated CUDA kernels); "
            "use backend='torch' with CUDA tensors meanwhile")
    if backend in ARRAY_BACKENDS and is_tensor(input):
        raise TypeError(f"backend={backend!r} takes NumPy arrays, not torch tensors; "
                        f"use backend='torch' or pass tensor.numpy()")
    if backend == "torch" and not is_tensor(input):
        raise TypeError("backend='torch' takes torch tensors; use backend='numpy' or 'c' for NumPy arrays")
    return backend


def check_grad_request(backend, return_grad, grad_output):
    """``return_grad`` / ``grad_output`` belong to the array backends (torch uses autograd)."""
    if backend == "torch" and (return_grad or grad_output is not None):
        raise ValueError("return_grad and grad_output are for the 'numpy' and 'c' backends; "
                         "with backend='torch' use autograd (loss.backward())")
    if grad_output is not None and not return_grad:
        raise ValueError("grad_output is used only with return_grad=True")


def kernel(name: str, backend: str):
    """The generated kernel ``name`` for ``backend`` (compiled/cached by :mod:`symxent.codegen`)."""
    from symxent.codegen import load_kernel

    return load_kernel(name, backend)
