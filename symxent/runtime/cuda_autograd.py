"""Autograd over the generated CUDA kernels: what ``symxent.functional`` calls for ``backend="cuda"``.

The inputs are already laid out as rows (the functional layer's job): logits ``(R, C)``, index
targets ``(R,)`` or probability targets ``(R, C)``; ``reduction="none"`` returns ``(R,)``.

Row losses compute the gradient in the forward pass (the kernel has the whole row on chip then)
and keep it for backward, which only multiplies by ``grad_output`` (skipped where it is exactly
1, as for ``loss.backward()`` of a mean or sum). With ``inplace_backward=True`` the gradient is
written into the logits' own buffer during the forward pass, as Liger-Kernel does: no extra
memory, but the logits are gone afterwards (do not use them again, e.g. in a second loss). The
default keeps the input intact and allocates the gradient. Either way the backward may run once.

``return_lse=True`` also returns the per-row logsumexp (float32; not differentiable: use
``lse_square_scale`` for a z-loss). Gradients with respect to targets and weights are not
generated here: asking for them is an error. A user loss's kernel (``symxent.codegen.cuda.compile_cuda_loss``)
goes through :func:`row_loss`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import semantics
from .cuda import load_cuda_kernel

_BACKWARD_ONCE = ("the backward of a symxent CUDA loss can run once: its gradient buffer is scaled in place "
                  "(retain_graph=True cannot run it again)")


@dataclass(frozen=True)
class RowOptions:
    """Everything a row-loss call fixes besides its tensors."""

    options: dict = field(default_factory=dict)
    ignore_index: int = -100
    reduction: str = "mean"
    return_lse: bool = False
    inplace_backward: bool = False


class _RowLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, target, weight, kernel, call: RowOptions):
        result = kernel.forward(z, target, weight, options=call.options, ignore_index=call.ignore_index,
                                reduction=call.reduction, want_grad=ctx.needs_input_grad[0],
                                inplace=call.inplace_backward, return_lse=call.return_lse)
        # a new tensor object (never the input object itself, even when it shares its buffer)
        ctx.kernel, ctx.grad = kernel, None if result.grad is None else result.grad.detach()
        if call.return_lse:
            ctx.mark_non_differentiable(result.lse)
            return result.loss, result.lse
        return result.loss

    @staticmethod
    def backward(ctx, grad_loss, *unused):
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            raise RuntimeError(_BACKWARD_ONCE)
        return ctx.kernel.backward(grad, grad_loss), None, None, None, None


class _RowMap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, kernel):
        out = kernel.forward(z)
        ctx.kernel = kernel
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return ctx.kernel.backward(out, grad_output.contiguous()), None


class _ElementwiseLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, others: dict, options: dict, reduction: str):
        loss, grad = kernel.forward({kernel.inputs[0]: x, **others}, options=options, reduction=reduction,
                                    want_grad=ctx.needs_input_grad[0])
        ctx.grad = grad
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            raise RuntimeError(_BACKWARD_ONCE)
        return grad * grad_output.to(grad.dtype), None, None, None, None


def _refuse_grad(**tensors):
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.requires_grad:
            raise NotImplementedError(f"backend='cuda' differentiates with respect to the input only; "
                                      f"{name} requires grad (detach it, or use backend='torch')")


def _without_grad_if_disabled(input):
    """Under ``torch.no_grad()`` a Function's forward still sees ``needs_input_grad``: detach the input so
    no gradient is computed (and ``inplace_backward`` never overwrites the logits)."""
    return input if torch.is_grad_enabled() else input.detach()


def row_loss(kernel, input, target, weight=None, *, options=None, ignore_index=-100, reduction="mean",
             return_lse=False, inplace_backward=False):
    """A row loss through a loaded :class:`~symxent.runtime.cuda.RowKernel`."""
    _refuse_grad(target=target, weight=weight)
    input = _without_grad_if_disabled(input)
    call = RowOptions(dict(options or {}), int(ignore_index), reduction, bool(return_lse), bool(inplace_backward))
    return _RowLoss.apply(input, target, weight, kernel, call)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", return_lse=False,
                  inplace_backward=False, **options):
    """``torch.nn.functional.cross_entropy`` of (R, C) logits. Index targets (R,) or probability targets (R, C).
    ``options``: the kernel's scalar options by name (``symxent.semantics.KERNEL_OPTIONS``; one not given is
    at its neutral value; an unknown name is a ``TypeError``): ``label_smoothing``, and ``lse_square_scale`` for
    the z-loss ``lse_square_scale * logsumexp(z)**2`` per row."""
    probability = target.is_floating_point() and tuple(target.shape) == tuple(input.shape)
    if probability and ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    kernel = load_cuda_kernel("cross_entropy_prob" if probability else "cross_entropy")
    options = semantics.with_neutral_options(options)
    return row_loss(kernel, input, target, weight, options=options, ignore_index=ignore_index, reduction=reduction,
                    return_lse=return_lse, inplace_backward=inplace_backward)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """``torch.nn.functional.nll_loss`` of (R, C) log-probabilities."""
    return row_loss(load_cuda_kernel("nll"), input, target, weight, ignore_index=ignore_index, reduction=reduction)


def softmax(input):
    """Softmax of each row of (R, C) ``input``."""
    return _RowMap.apply(input, load_cuda_kernel("softmax"))


def log_softmax(input):
    """Log-softmax of each row of (R, C) ``input``."""
    return _RowMap.apply(input, load_cuda_kernel("log_softmax"))


def _elementwise(name, x, others, options=None, reduction="mean"):
    _refuse_grad(**others)
    x = _without_grad_if_disabled(x)
    return _ElementwiseLoss.apply(x, load_cuda_kernel(name), others, dict(options or {}), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, *, reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy_with_logits``; ``weight`` and ``pos_weight`` have the
    input's shape, the shape of its last dimension, or one value (expand others first)."""
    return _elementwise("bce_with_logits", input, {"t": target, "pos_weight": pos_weight, "weight": weight},
                        reduction=reduction)


def binary_cross_entropy(input, target, weight=None, *, reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy`` (probabilities; logs clamped at -100)."""
    return _elementwise("bce", input, {"t": target, "weight": weight}, reduction=reduction)


def kl_div(input, target, *, reduction="mean", log_target=False):
    """``torch.nn.functional.kl_div`` pointwise terms; ``batchmean`` divides the sum by ``input.size(0)``."""
    if reduction == "batchmean":
        total = _elementwise("kl_div", input, {"target": target}, {"log_target": bool(log_target)}, "sum")
        return total / input.shape[0]
    return _elementwise("kl_div", input, {"target": target}, {"log_target": bool(log_target)}, reduction)
