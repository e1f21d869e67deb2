"""The NumPy and C backends: PyTorch's semantics around the generated kernels, on NumPy arrays.

The kernels give per-row / per-element losses and their gradients for upstream gradient 1; this module
applies the reduction and the chain rule through it: ``grad_input = kernel_grad * upstream`` with
``upstream = grad_output`` (``reduction="none"``), ``1`` (``sum``) or ``1 / W`` (``mean``). Every loss
here is linear in its weights, so a scalar upstream is folded into the weights passed to the kernel
(``kernel(w * s) = s * kernel(w)``): the gradient comes out scaled, with no extra pass over it.
Never imports torch.
"""
from __future__ import annotations

import numpy as np

from .. import semantics as sem
from .dispatch import kernel


# --- arguments ---------------------------------------------------------------------------------

def as_array(value):
    return None if value is None else np.asarray(value)


def work_dtype(dtype, what="input"):
    """float32/float64 run as given; float16 runs in float32 and is rounded once at the end."""
    return np.dtype(sem.compute_dtype(np.dtype(dtype), what))


def upstream(grad_output, out_shape, return_grad):
    """The upstream gradient: a float for a scalar output (default 1), else an array of ``out_shape``."""
    if not return_grad:
        return None
    if out_shape is None or tuple(out_shape) == ():  # scalar output
        if grad_output is None:
            return 1.0
        g = np.asarray(grad_output)
        if g.size != 1:
            raise ValueError(f"grad_output of a scalar output must be a scalar, got shape {g.shape}")
        return float(g.reshape(()))
    if grad_output is None:
        raise ValueError("return_grad=True with a non-scalar output (reduction='none', softmax, log_softmax) "
                         "needs grad_output=, an array of the output's shape")
    g = np.asarray(grad_output)
    if g.shape != tuple(out_shape):
        raise ValueError(f"grad_output must have the output's shape {tuple(out_shape)}, got {g.shape}")
    return g


def _scalar(value, dtype):
    return dtype.type(value)


def _fold(reduction, denominator, return_grad):
    """The factor folded into the weights (``1/W`` for ``mean`` when a gradient is wanted), else None.

    ``W == 0`` folds ``inf``: zero weights become NaN as in torch's ``0 * (1/0)``; the mean itself is NaN.
    """
    if return_grad and reduction == "mean":
        return 1.0 / float(denominator) if denominator != 0 else float("inf")
    return None


def _reduce(loss, reduction, denominator, out_shape, folded, dtype):
    """Reduce kernel rows/elements (already multiplied by ``folded`` = 1/W when it is not None)."""
    if reduction == "none":
        return loss.reshape(out_shape).astype(dtype, copy=False)
    total = loss.sum()
    if reduction == "mean":
        if denominator == 0 or denominator != denominator:  # 0/0 (or torch's numel / C with no classes)
            total = np.nan
        elif folded is None:
            total = total / loss.dtype.type(denominator)
    return _scalar(total, dtype)


def _apply_upstream(grad, g, reduction, denominator, folded, rows_shape=None):
    """``grad *= upstream`` (in place), for what was not folded into the weights."""
    if isinstance(g, np.ndarray):
        grad *= g.reshape(rows_shape if rows_shape is not None else grad.shape)
        return
    factor = g
    if reduction == "mean" and folded is None:  # nothing to fold into (kl_div)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = g / np.float64(denominator)
    if factor != 1.0:
        with np.errstate(invalid="ignore"):
            grad *= grad.dtype.type(factor)


# --- cross_entropy / nll_loss --------------------------------------------------------------------

def class_loss(spec, input, target, weight, *, backend, return_grad, grad_output):
    """cross_entropy (index or probability targets) and nll_loss on NumPy arrays (``spec``: ClassLossSpec)."""
    layout, reduction = spec.layout, spec.reduction
    dtype = input.dtype if not layout.probability else np.result_type(input.dtype, target.dtype)
    work = work_dtype(dtype)
    C, R = layout.num_classes, layout.rows
    scalar_out = reduction != "none"
    g = upstream(grad_output, None if scalar_out else layout.out_shape, return_grad)

    z = sem.class_rows(np, input.astype(work, copy=False))
    w = np.ones(C, dtype=work) if weight is None else weight.astype(work, copy=False)
    ignored, counted = None, R
    if layout.probability:
        y = sem.class_rows(np, target.astype(work, copy=False))
        denominator = sem.probability_mean_denominator(layout)
    else:
        t = target.reshape(-1).astype(np.int64, copy=False)
        y, ignored, row_weight = sem.index_rows(np, t, C, spec.ignore_index, w)
        denominator = row_weight.sum(dtype=np.float64) if reduction == "mean" else 1
        counted = R - int(ignored.sum()) if ignored is not None else R
    folded = _fold(reduction, denominator, return_grad)
    with np.errstate(invalid="ignore"):
        kernel_weight = w * work.type(folded) if folded is not None else w
    options = sem.kernel_option_values(spec.kernel_options(), reduction, layout.probability, denominator, counted,
                                       folded=folded is not None)

    lse = np.full(R, -np.inf, work)
    if R == 0 or C == 0:  # nothing to compute: loss 0 (every row ignored when there are no classes), lse -inf
        loss, grad = np.zeros(R, work), (np.zeros((R, C), work) if return_grad else None)
    else:
        result = kernel(spec.kernel, backend)(z, y, kernel_weight, **options, want_grad=return_grad)
        loss, grad, lse = result if len(result) == 3 else (*result, lse)  # cross-entropies also return lse
    sem.zero_ignored_rows(ignored, loss)
    out = _reduce(loss, reduction, denominator, layout.out_shape, folded, dtype)
    if C == 0:
        out = out + dtype.type(spec.no_class_row_loss())
    if spec.return_lse:
        out = (out, lse.reshape(layout.out_shape))
    if not return_grad:
        return out
    _apply_upstream(grad, g, reduction, denominator, folded, rows_shape=(R, 1))
    sem.zero_ignored_rows(ignored, grad)
    grad = sem.from_class_rows(np, grad, input.shape).astype(input.dtype, copy=False)
    return (*out, grad) if spec.return_lse else (out, grad)


# --- softmax / log_softmax -------------------------------------------------------------------------

def softmax_like(name, input, dim, *, backend, return_grad, grad_output):
    """softmax / log_softmax along ``dim``; the gradient is the kernel's vector-Jacobian product."""
    dtype = input.dtype
    work = work_dtype(dtype)
    g = upstream(grad_output, input.shape, return_grad)
    z = sem.last_dim_rows(np, input.astype(work, copy=False), dim)
    kern = kernel(name, backend) if z.size else None
    out_rows = kern(z) if kern else np.empty_like(z)
    out = sem.from_last_dim_rows(np, out_rows, input.shape, dim).astype(dtype, copy=False)
    if not return_grad:
        return out
    g_rows = sem.last_dim_rows(np, np.broadcast_to(np.asarray(g, dtype=work), input.shape), dim)
    grad_rows = kern.backward(out_rows, g_rows) if kern else np.empty_like(z)
    return out, sem.from_last_dim_rows(np, grad_rows, input.shape, dim).astype(dtype, copy=False)


# --- binary_cross_entropy, binary_cross_entropy_with_logits, kl_div ------------------------------

def _flat(array, shape, dtype):
    """``array`` broadcast to ``shape``, as a flat C-contiguous array of ``dtype``."""
    return np.ascontiguousarray(np.broadcast_to(array.astype(dtype, copy=False), shape)).reshape(-1)


def _sum_to_shape(grad, shape):
    """The gradient of a broadcast: summed over the broadcast dimensions back to ``shape``."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, size in enumerate(shape)
                                      if size == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def elementwise_loss(spec, input, target, *, weight=None, pos_weight=None, backend, return_grad, grad_output):
    """binary_cross_entropy (``bce``), ``bce_with_logits`` and ``kl_div`` on NumPy arrays (``spec``: ElementwiseSpec).

    All arrays are broadcast to ``spec.shape`` and flattened. The gradient is with respect to ``input``
    (summed back over broadcast dimensions).
    """
    name, shape, reduction, denominator = spec.kernel, spec.shape, spec.reduction, spec.denominator
    dtype = np.result_type(input.dtype, target.dtype)
    work = work_dtype(dtype)
    scalar_out = reduction != "none"
    g = upstream(grad_output, None if scalar_out else shape, return_grad)
    n = sem.numel(shape)
    x = _flat(input, shape, work)
    t = _flat(target, shape, work)
    if name == "bce":
        sem.check_unit_interval(x, "input")
        sem.check_unit_interval(t, "target")

    has_weight = name != "kl_div"
    folded = _fold(reduction, denominator, return_grad) if has_weight else None
    if has_weight:
        w = np.ones(n, dtype=work) if weight is None else _flat(weight, shape, work)
        if folded is not None:
            with np.errstate(invalid="ignore"):
                w = w * work.type(folded)
    if n == 0:
        loss, grad = np.zeros(0, work), (np.zeros(0, work) if return_grad else None)
    else:
        kern = kernel(name, backend)
        if name == "bce":
            loss, grad = kern(x, t, w, return_grad)
        elif name == "bce_with_logits":
            pw = np.ones(n, dtype=work) if pos_weight is None else _flat(pos_weight, shape, work)
            loss, grad = kern(x, t, pw, w, return_grad)
        else:
            loss, grad = kern(x, t, spec.log_target, return_grad)
    out = _reduce(loss, reduction, denominator, shape, folded, dtype)
    if not return_grad:
        return out
    _apply_upstream(grad, g, reduction, denominator, folded)
    grad = _sum_to_shape(grad.reshape(shape), input.shape)
    return out, grad.astype(input.dtype if sem.is_floating(input.dtype) else dtype, copy=False)
