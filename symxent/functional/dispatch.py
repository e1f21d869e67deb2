"""Backend choice and kernel loading for :mod:`symxent.functional`.

Backends: ``"numpy"`` and ``"c"`` take NumPy arrays and never import torch; ``"torch"`` takes tensors and
differentiates with autograd through a torch.library custom op; ``"cuda"`` takes CUDA tensors and runs the
generated CUDA kernels (:mod:`symxent.runtime.cuda_autograd`); ``"triton"`` runs the generated Triton kernels
in the torch backend's custom ops (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``). The default is
``"torch"`` for tensors and ``"numpy"`` for anything else. Only ``"cuda"`` and ``"triton"`` take cross_entropy's
:data:`CUDA_OPTIONS` (``inplace_backward``) at other than its default.
"""
from __future__ import annotations

import sys

BACKENDS = ("numpy", "torch", "c", "cuda", "triton")
ARRAY_BACKENDS = ("numpy", "c")
TENSOR_BACKENDS = ("torch", "cuda", "triton")
#: cross_entropy's options of the CUDA kernels alone, with their defaults (the only values other backends accept)
CUDA_OPTIONS = {"inplace_backward": False}


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
    if backend in ARRAY_BACKENDS and is_tensor(input):
        raise TypeError(f"backend={backend!r} takes NumPy arrays, not torch tensors; "
                        f"use backend='torch' or pass tensor.numpy()")
    if backend in TENSOR_BACKENDS and not is_tensor(input):
        raise TypeError(f"backend={backend!r} takes torch tensors; use backend='numpy' or 'c' for NumPy arrays")
    if backend == "triton":
        check_triton(input)
    return backend


def check_triton(input):
    """``backend="triton"``: the triton package, and a CUDA tensor or Triton's interpreter for a CPU one."""
    import importlib.util
    import os

    if importlib.util.find_spec("triton") is None:
        raise RuntimeError("backend='triton' needs the triton package (pip install triton; Linux)")
    if input.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(f"backend='triton' runs the generated Triton kernels on CUDA tensors, or on CPU tensors under "
                           f"Triton's interpreter (set TRITON_INTERPRET=1 before symxent's kernels are imported); "
                           f"got a tensor on {input.device}")


def check_grad_request(backend, return_grad, grad_output):
    """``return_grad`` / ``grad_output`` belong to the array backends (torch and cuda use autograd)."""
    if backend in TENSOR_BACKENDS and (return_grad or grad_output is not None):
        raise ValueError(f"return_grad and grad_output are for the 'numpy' and 'c' backends; "
                         f"with backend={backend!r} use autograd (loss.backward())")
    if grad_output is not None and not return_grad:
        raise ValueError("grad_output is used only with return_grad=True")


def cuda_options(backend, **options) -> dict:
    """cross_entropy's options of the GPU kernels alone: passed on for ``"cuda"`` and ``"triton"``; the other
    backends accept only the defaults."""
    if backend in ("cuda", "triton"):
        return options
    for name, value in options.items():
        if value != CUDA_OPTIONS[name]:
            why = (": only the CUDA and Triton kernels write the gradient into the logits' buffer (the numpy and c "
                   "backends return it, the torch backend's autograd keeps the input)" if name == "inplace_backward"
                   else "")
            raise ValueError(f"cross_entropy: {name}={value!r} needs backend='cuda' or 'triton', not "
                             f"backend={backend!r}{why}")
    return {}


def kernel(name: str, backend: str):
    """The generated kernel ``name`` for ``backend`` (compiled and cached by :mod:`symxent.runtime`)."""
    from symxent.runtime.kernels import load_kernel

    return load_kernel(name, backend)
