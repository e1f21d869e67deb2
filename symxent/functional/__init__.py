"""symxent.functional — the numeric API, mirroring ``torch.nn.functional`` on generated kernels.

Functions: :func:`cross_entropy`, :func:`nll_loss`, :func:`log_softmax`, :func:`softmax`,
:func:`binary_cross_entropy`, :func:`binary_cross_entropy_with_logits`, :func:`kl_div`; each takes
``backend="numpy" | "torch" | "c" | "cuda"`` (default: torch for tensors, numpy for arrays) and, on the NumPy
and C backends, ``return_grad=True`` / ``grad_output=`` for the gradient with respect to ``input``; torch
and cuda differentiate with autograd. ``backend="cuda"`` runs the generated CUDA kernels on CUDA tensors,
and its cross_entropy takes ``lse_square_scale`` (z-loss), ``return_lse`` and ``inplace_backward``.
:func:`linear_cross_entropy` (torch tensors) fuses the projection to the logits with the loss, in chunks of rows.

The losses and gradients come from kernels generated from the symbolic definitions
(:func:`symxent.codegen.load_kernel`); this package adds PyTorch's semantics around them. Importing it
does not import torch (the torch backend does, on first use).
"""
from .api import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    log_softmax,
    nll_loss,
    softmax,
)
from .dispatch import BACKENDS


def __getattr__(name):
    if name == "linear_cross_entropy":  # imports torch: loaded at first use
        from .linear import linear_cross_entropy
        return linear_cross_entropy
    raise AttributeError(f"module 'symxent.functional' has no attribute {name!r}")


__all__ = [
    "cross_entropy", "nll_loss", "log_softmax", "softmax", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "linear_cross_entropy", "BACKENDS",
]
