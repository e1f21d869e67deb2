"""The cuda backend: the generated CUDA kernels through their autograd functions (:mod:`symxent.runtime.cuda_autograd`).

This module only lays the tensors out for them (:mod:`.semantics`): ``(N, C, d1..dK)`` / ``(C,)`` inputs
become ``(R, C)`` rows and come back in the input's layout; elementwise operands are passed whole, per
last dimension or as one value. The kernels do the rest: target range checks (``IndexError`` before
anything is written), ``ignore_index``, the reductions (``mean`` over W = the counted rows' weights) and
the gradient, computed in the forward pass; the backward multiplies it by ``grad_output``.
They take float32 / float16 / bfloat16 CUDA tensors and raise ``RuntimeError`` saying why when no usable
GPU is present (:func:`symxent.runtime.cuda.unavailable_reason`), ``TypeError`` for CPU or float64 tensors.

The CUDA kernels compute the gradient by the input. Where a call also differentiates an argument torch
differentiates (a probability target and its weight, the target of the BCEs and kl_div), it runs the torch
backend's ops instead (:mod:`.torch_ops`: the generated torch kernels, on the same CUDA tensors).
"""
from __future__ import annotations

import torch

from symxent.runtime import cuda_autograd as cx

from .. import semantics as sem


def _differentiated(input):
    """``input`` as the kernels get it: detached when no gradient is needed, so that none is computed and
    ``inplace_backward`` leaves the input alone (e.g. under ``torch.no_grad()``)."""
    return input if torch.is_grad_enabled() and input.requires_grad else input.detach()


def _differentiates(*arguments) -> bool:
    """Whether autograd will want the gradient of one of these arguments (the kernels give the input's only)."""
    return torch.is_grad_enabled() and any(getattr(a, "requires_grad", False) for a in arguments)


def _torch_backend():
    from . import torch_ops

    return torch_ops


def class_loss(spec, input, target, weight, *, inplace_backward=False):
    """cross_entropy (index or probability targets) and nll_loss (``spec``: ClassLossSpec)."""
    return_lse = spec.return_lse
    layout = spec.layout
    if layout.probability and _differentiates(target, weight):
        return _torch_backend().class_loss(spec, input, target, weight)
    if not layout.probability:
        sem.check_differentiable(sem.nll_forward_name(input.ndim), weight=weight)
    if layout.probability:
        dtype = torch.promote_types(input.dtype, target.dtype)
        input, target = input.to(dtype), sem.class_rows(torch, target.to(dtype))
    else:
        target = target.reshape(-1)
    z = sem.class_rows(torch, _differentiated(input))
    common = dict(ignore_index=spec.ignore_index, reduction=spec.reduction)
    if spec.kernel == "nll":
        loss, lse = cx.nll_loss(z, target, weight, **common), None
    else:
        loss = cx.cross_entropy(z, target, weight, return_lse=bool(return_lse), inplace_backward=bool(inplace_backward),
                                **common, **spec.kernel_options())
        loss, lse = loss if return_lse else (loss, None)
    if spec.reduction == "none":
        loss = loss.reshape(layout.out_shape)
    return (loss, lse.reshape(layout.out_shape)) if return_lse else loss


def softmax_like(name, input, dim):
    """softmax / log_softmax along ``dim``."""
    rows = sem.last_dim_rows(torch, input, dim)
    out = (cx.softmax if name == "softmax" else cx.log_softmax)(rows)
    return sem.from_last_dim_rows(torch, out, input.shape, dim)


def _operand(value, shape):
    """An operand broadcasting to ``shape`` as the elementwise kernels take it: whole, one value, or one
    per last-dimension entry (no copy); any other broadcast is expanded."""
    if value is None or value.numel() == 1 or tuple(value.shape) == shape:
        return value
    if value.numel() == shape[-1] and value.shape[-1] == shape[-1]:
        return value.reshape(-1)
    return value.expand(shape)


def elementwise_loss(spec, input, target, *, weight=None, pos_weight=None):
    """binary_cross_entropy (``bce``), ``bce_with_logits`` and ``kl_div`` (``spec``: ElementwiseSpec)."""
    name, shape = spec.kernel, spec.shape
    sem.check_differentiable(spec.function, weight=weight, pos_weight=pos_weight)
    if _differentiates(target):
        return _torch_backend().elementwise_loss(spec, input, target, weight=weight, pos_weight=pos_weight)
    x = _differentiated(input).to(torch.promote_types(input.dtype, target.dtype)).expand(shape).contiguous()
    t = _operand(target, shape)
    reduction, divisor = spec.reduction, None
    if reduction == "mean" and spec.denominator != sem.numel(shape):  # kl_div's batchmean
        reduction, divisor = "sum", spec.denominator
    if name == "bce":
        sem.check_unit_interval(x.reshape(-1), "input")
        sem.check_unit_interval(target.reshape(-1), "target")
        loss = cx.binary_cross_entropy(x, t, _operand(weight, shape), reduction=reduction)
    elif name == "bce_with_logits":
        loss = cx.binary_cross_entropy_with_logits(x, t, _operand(weight, shape), _operand(pos_weight, shape),
                                                   reduction=reduction)
    else:
        loss = cx.kl_div(x, t, reduction=reduction, log_target=spec.log_target)
    return loss if divisor is None else loss / divisor
