"""The torch backend: generated kernels as ``torch.library`` custom ops, differentiated by their generated gradient.

Each op runs a generated torch kernel on rows ``(R, C)`` or flat elements and returns the loss together with
the kernel's symbolic gradient (upstream 1). Its registered autograd formula is a single product,
``grad_input = kernel_grad * grad_output`` (broadcast over the class dimension for rows): autograd never
differentiates through the forward. Reshapes, ignore masks and reductions around the ops are ordinary torch
operations (see :mod:`symxent.functional.semantics`), so autograd carries ``1 / W`` or a per-row
``grad_output`` into the ops' backward. Data-dependent checks (target range, BCE's [0, 1]) happen inside the
ops, so ``torch.compile(fullgraph=True)`` traces the whole loss without graph breaks.

Ops (namespace ``symxent``): ``cross_entropy_rows``, ``cross_entropy_prob_rows``, ``nll_rows``,
``softmax_rows`` / ``softmax_rows_backward``, ``log_softmax_rows`` / ``log_softmax_rows_backward``,
``bce_elements``, ``bce_with_logits_elements``, ``kl_div_elements``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import semantics as sem
from .dispatch import kernel

_HALF_TYPES = (torch.float16, torch.bfloat16)


def _no_grad_output(z: Tensor) -> Tensor:
    return z.new_empty(0)


def _per_row(z: Tensor, size, fill=None) -> Tensor:
    """A per-row (or per-element) loss or logsumexp buffer: float32, float64 for float64 input (the Triton kernels
    take half-precision rows as they are and return these in float32)."""
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    return z.new_empty(size, dtype=dtype) if fill is None else z.new_full(size, fill, dtype=dtype)


# --- class-indexed rows -----------------------------------------------------------------------------

def _options(values, mean, probability, total_weight, counted) -> dict:
    """The kernel's scalar options by name from an op's ``options`` (in :data:`symxent.semantics.KERNEL_OPTIONS`'
    order), rescaled for the reduction."""
    options = dict(zip(sem.KERNEL_OPTIONS, values))
    return sem.kernel_option_values(options, "mean" if mean else "sum", probability, total_weight, counted)


def _index_rows(name, z, target, weight, ignore_index, want_grad, options=None, mean=False, kernels="torch",
                out=None):
    """``(loss, w[y], grad, lse)`` of the rows; ``options``: cross_entropy's scalar options (None: nll);
    ``kernels``: whose generated kernels run (``torch`` or ``triton``); ``out``: where the gradient goes (triton)."""
    given = {} if out is None else dict(out=out)
    rows, classes = z.shape
    safe, ignored, row_weight = sem.index_rows(torch, target, classes, ignore_index, weight)
    lse = _per_row(z, (rows,), float("-inf"))
    if rows == 0 or classes == 0:  # nothing to compute: loss 0 (every row ignored when there are no classes)
        loss, grad = _per_row(z, (rows,), 0.0), z.new_zeros((rows, classes)) if want_grad else None
    elif options is None:
        loss, grad = kernel(name, kernels)(z, safe, weight, want_grad=want_grad)
    else:
        scalars = _options(options, mean, False, row_weight.sum(), (target != ignore_index).sum())
        loss, grad, lse = kernel(name, kernels)(z, safe, weight, **scalars, want_grad=want_grad, **given)
    sem.zero_ignored_rows(ignored, loss, grad)
    return loss, row_weight, grad if grad is not None else _no_grad_output(z), lse


@torch.library.custom_op("symxent::cross_entropy_rows", mutates_args=())
def cross_entropy_rows(z: Tensor, target: Tensor, weight: Tensor, ignore_index: int, options: list[float],
                       mean: bool, want_grad: bool, kernels: str = "torch") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rows of cross_entropy with index targets: ``(loss (R,), w[y] (R,), d loss / d z (R, C) or empty, lse (R,))``;
    ``options``: the scalar options in :data:`symxent.semantics.KERNEL_OPTIONS`' order, rescaled for ``mean`` as
    that table says (the z-loss: :func:`symxent.semantics.z_loss_scale`)."""
    return _index_rows("cross_entropy", z, target, weight, ignore_index, want_grad, options, mean, kernels)


@torch.library.custom_op("symxent::nll_rows", mutates_args=())
def nll_rows(logp: Tensor, target: Tensor, weight: Tensor, ignore_index: int,
             want_grad: bool, kernels: str = "torch") -> tuple[Tensor, Tensor, Tensor]:
    """Rows of nll_loss: ``(loss (R,), w[y] (R,), d loss / d logp (R, C) or empty)``."""
    return _index_rows("nll", logp, target, weight, ignore_index, want_grad, kernels=kernels)[:3]


@torch.library.custom_op("symxent::cross_entropy_prob_rows", mutates_args=())
def cross_entropy_prob_rows(z: Tensor, target: Tensor, weight: Tensor, options: list[float], mean: bool,
                            want_grad: bool, kernels: str = "torch") -> tuple[Tensor, Tensor, Tensor]:
    """Rows of cross_entropy with probability targets: ``(loss (R,), d loss / d z (R, C) or empty, lse (R,))``;
    ``options`` as for :func:`cross_entropy_rows` (``mean`` divides by the number of rows)."""
    return _prob_rows(z, target, weight, options, mean, want_grad, kernels)


def _prob_rows(z, target, weight, options, mean, want_grad, kernels, out=None):
    rows, classes = z.shape
    given = {} if out is None else dict(out=out)
    if rows == 0 or classes == 0:  # the empty sum over classes: loss 0, lse -inf
        return (_per_row(z, (rows,), 0.0), z.new_zeros(z.shape) if want_grad else _no_grad_output(z),
                _per_row(z, (rows,), float("-inf")))
    scalars = _options(options, mean, True, rows, rows)
    loss, grad, lse = kernel("cross_entropy_prob", kernels)(z, target, weight, **scalars, want_grad=want_grad, **given)
    return loss, grad if grad is not None else _no_grad_output(z), lse


class _RowsInPlace(torch.autograd.Function):
    """cross_entropy on ``backend="triton"`` with ``inplace_backward=True`` (Liger-Kernel's way): the kernel writes
    d loss / d z into the logits' own buffer during the forward pass, so no gradient buffer is allocated and the
    logits are overwritten; backward scales that buffer by the upstream gradient in place (it can run once)."""

    @staticmethod
    def forward(ctx, z, target, weight, ignore_index, options, mean, probability):
        if probability:
            loss, grad, lse = _prob_rows(z, target, weight, options, mean, True, "triton", out=z)
            row_weight = None
        else:
            loss, row_weight, grad, lse = _index_rows("cross_entropy", z, target, weight, ignore_index, True, options,
                                                      mean, "triton", out=z)
        ctx.save_for_backward(grad)
        outputs = (loss, lse) if row_weight is None else (loss, row_weight, lse)
        ctx.mark_non_differentiable(*outputs[1:])
        return outputs

    @staticmethod
    def backward(ctx, grad_loss, *_unused):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_loss.unsqueeze(-1).to(grad.dtype)), None, None, None, None, None, None


@cross_entropy_rows.register_fake
def _(z, target, weight, ignore_index, options, mean, want_grad, kernels="torch"):
    return (_per_row(z, z.shape[0]), weight.new_empty(z.shape[0]), z.new_empty(z.shape if want_grad else (0,)),
            _per_row(z, z.shape[0]))


@nll_rows.register_fake
def _(logp, target, weight, ignore_index, want_grad, kernels="torch"):
    return _per_row(logp, logp.shape[0]), weight.new_empty(logp.shape[0]), logp.new_empty(
        logp.shape if want_grad else (0,))


@cross_entropy_prob_rows.register_fake
def _(z, target, weight, options, mean, want_grad, kernels="torch"):
    return _per_row(z, z.shape[0]), z.new_empty(z.shape if want_grad else (0,)), _per_row(z, z.shape[0])


# --- elementwise losses -------------------------------------------------------------------------------

def _elements(name, x, *args, kernels="torch"):
    want_grad = args[-1]
    if x.numel() == 0:
        return _per_row(x, (0,)), x.new_zeros(0) if want_grad else _no_grad_output(x)
    loss, grad = kernel(name, kernels)(x, *args)
    return loss, grad if grad is not None else _no_grad_output(x)


@torch.library.custom_op("symxent::bce_elements", mutates_args=())
def bce_elements(p: Tensor, target: Tensor, weight: Tensor, want_grad: bool,
                 kernels: str = "torch") -> tuple[Tensor, Tensor]:
    """binary_cross_entropy per element: ``(loss, d loss / d p or empty)``; checks both in [0, 1]."""
    sem.check_unit_interval(p, "input")
    sem.check_unit_interval(target, "target")
    return _elements("bce", p, target, weight, want_grad, kernels=kernels)


@torch.library.custom_op("symxent::bce_with_logits_elements", mutates_args=())
def bce_with_logits_elements(x: Tensor, target: Tensor, pos_weight: Tensor, weight: Tensor,
                             want_grad: bool, kernels: str = "torch") -> tuple[Tensor, Tensor]:
    """binary_cross_entropy_with_logits per element: ``(loss, d loss / d x or empty)``."""
    return _elements("bce_with_logits", x, target, pos_weight, weight, want_grad, kernels=kernels)


@torch.library.custom_op("symxent::kl_div_elements", mutates_args=())
def kl_div_elements(input: Tensor, target: Tensor, log_target: bool, want_grad: bool,
                    kernels: str = "torch") -> tuple[Tensor, Tensor]:
    """kl_div pointwise terms: ``(loss, d loss / d input or empty)``."""
    return _elements("kl_div", input, target, log_target, want_grad, kernels=kernels)


def _fake_elements(x, *args, kernels="torch"):
    want_grad = args[-1] if isinstance(args[-1], bool) else args[-2]  # kernels may come last, by position
    return _per_row(x, x.shape), x.new_empty(x.shape if want_grad else (0,))


for _op in (bce_elements, bce_with_logits_elements, kl_div_elements):
    _op.register_fake(_fake_elements)


# --- autograd: the generated gradient, scaled by grad_output ------------------------------------------

def _register_loss_autograd(op, rows, grad_at=-1, one_hot=False, others=None):
    """backward of an op returning ``(loss, ..., kernel_grad, ...)``: ``kernel_grad * grad_loss`` for input 0 (the
    kernel's gradient is output ``grad_at``; the other outputs are not differentiable). ``one_hot``: the
    gradient lives on each row's target class (input 1) only, and stays exactly 0 elsewhere whatever the
    upstream gradient (``inf`` or NaN under a mean with zero total weight), as torch's nll_loss backward.
    ``others(inputs, wanted, grad_loss)``: the gradients of the other inputs torch differentiates, by position
    (``wanted``: the positions autograd asks for)."""

    def setup_context(ctx, inputs, output):
        tensors = [i for i, v in enumerate(inputs) if isinstance(v, Tensor)]
        ctx.tensor_positions, ctx.values = tensors, [None if i in tensors else v for i, v in enumerate(inputs)]
        ctx.save_for_backward(output[grad_at], *(inputs[i] for i in tensors))

    def backward(ctx, grad_loss, *_unused):
        grad, *tensors = ctx.saved_tensors
        inputs = list(ctx.values)
        for i, value in zip(ctx.tensor_positions, tensors):
            inputs[i] = value
        target = inputs[1]
        grads = [None] * len(ctx.needs_input_grad)  # the op's inputs (its defaults included)
        if ctx.needs_input_grad[0]:
            scale = grad_loss.unsqueeze(-1) if rows else grad_loss
            grads[0] = grad * scale
            if one_hot and grads[0].numel():
                on_target = torch.zeros_like(grads[0], dtype=torch.bool).scatter_(
                    1, target.clamp(0, grads[0].shape[1] - 1).unsqueeze(1), True)
                grads[0] = torch.where(on_target, grads[0], 0)
        wanted = [i for i in range(1, len(grads)) if ctx.needs_input_grad[i]]
        if others and wanted:
            for i, value in others(inputs, wanted, grad_loss).items():
                grads[i] = value
        return tuple(grads)

    op.register_autograd(backward, setup_context=setup_context)


# --- gradients by the target and the weights (the arguments torch differentiates besides the input) -----

@torch.library.custom_op("symxent::prob_target_grads", mutates_args=())
def prob_target_grads(z: Tensor, target: Tensor, weight: Tensor, label_smoothing: float, want_target: bool,
                      want_weight: bool) -> tuple[Tensor, Tensor]:
    """Probability-target cross_entropy rows: ``(d loss / d y (R, C) or empty, d loss / d w per row (R, C) or
    empty)``, the generated kernels ``cross_entropy_prob_target`` / ``cross_entropy_prob_weight``."""
    def grad(name, wanted):
        if not wanted:
            return _no_grad_output(z)
        if not z.numel():
            return z.new_zeros(z.shape)
        return kernel(name, "torch")(z, target, weight, label_smoothing)
    return grad("cross_entropy_prob_target", want_target), grad("cross_entropy_prob_weight", want_weight)


@prob_target_grads.register_fake
def _(z, target, weight, label_smoothing, want_target, want_weight):
    return z.new_empty(z.shape if want_target else (0,)), z.new_empty(z.shape if want_weight else (0,))


@torch.library.custom_op("symxent::target_grad_elements", mutates_args=())
def target_grad_elements(name: str, operands: list[Tensor], log_target: bool) -> Tensor:
    """d loss / d target per element of ``name`` (``bce``, ``bce_with_logits``, ``kl_div``): the generated kernel
    ``<name>_target``, called with the loss op's tensor operands (and kl_div's ``log_target``)."""
    if not operands[0].numel():
        return operands[0].new_zeros(0)
    flags = (log_target,) if name == "kl_div" else ()
    return kernel(f"{name}_target", "torch")(*operands, *flags, True)[1]


target_grad_elements.register_fake(lambda name, operands, log_target: operands[0].new_empty(operands[0].shape))


def _prob_rows_others(inputs, wanted, grad_loss):
    """cross_entropy_prob_rows(z, y, w, options, ...): the gradients of y (input 1) and w (input 2)."""
    z, y, w, options = inputs[:4]
    smoothing = dict(zip(sem.KERNEL_OPTIONS, options))["label_smoothing"]
    grad_y, grad_w = prob_target_grads(z.to(work_dtype(z.dtype)), y, w, smoothing, 1 in wanted, 2 in wanted)
    scale = grad_loss.unsqueeze(-1)
    return {i: g for i, g in ((1, grad_y * scale if 1 in wanted else None),
                              (2, (grad_w * scale).sum(0) if 2 in wanted else None)) if g is not None}


def _elements_others(name):
    """An elementwise loss op's gradient by its target (input 1)."""
    def others(inputs, wanted, grad_loss):
        operands = [v.to(work_dtype(v.dtype)) for v in inputs if isinstance(v, Tensor)]  # half input: triton's
        log_target = bool(inputs[2]) if name == "kl_div" else False
        return {1: target_grad_elements(name, operands, log_target) * grad_loss}
    return others


_register_loss_autograd(cross_entropy_rows, rows=True, grad_at=2)
_register_loss_autograd(nll_rows, rows=True, one_hot=True)
_register_loss_autograd(cross_entropy_prob_rows, rows=True, grad_at=1, others=_prob_rows_others)
_register_loss_autograd(bce_elements, rows=False, others=_elements_others("bce"))
_register_loss_autograd(bce_with_logits_elements, rows=False, others=_elements_others("bce_with_logits"))
_register_loss_autograd(kl_div_elements, rows=False, others=_elements_others("kl_div"))


# --- softmax / log_softmax: forward op and vector-Jacobian-product op ---------------------------------

def _softmax_like_ops(name):
    @torch.library.custom_op(f"symxent::{name}_rows", mutates_args=())
    def forward(z: Tensor, kernels: str = "torch") -> Tensor:
        return kernel(name, kernels)(z) if z.numel() else torch.empty_like(z)

    @torch.library.custom_op(f"symxent::{name}_rows_backward", mutates_args=())
    def vjp(out: Tensor, grad_out: Tensor, kernels: str = "torch") -> Tensor:
        return kernel(name, kernels).backward(out, grad_out) if out.numel() else torch.empty_like(out)

    forward.register_fake(lambda z, kernels="torch": torch.empty_like(z))
    vjp.register_fake(lambda out, grad_out, kernels="torch": torch.empty_like(out))

    def setup_context(ctx, inputs, output):
        ctx.kernels = inputs[1] if len(inputs) > 1 else "torch"
        ctx.save_for_backward(output)

    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return vjp(out, grad_out.contiguous(), ctx.kernels), None

    forward.register_autograd(backward, setup_context=setup_context)
    return forward, vjp


softmax_rows, softmax_rows_backward = _softmax_like_ops("softmax")
log_softmax_rows, log_softmax_rows_backward = _softmax_like_ops("log_softmax")


# --- pipelines: semantics around the ops --------------------------------------------------------------

def work_dtype(dtype):
    """float32/float64 run as given; float16/bfloat16 run in float32 (autograd rounds the gradient once)."""
    sem.compute_dtype(dtype)  # raises for non-floating dtypes
    return torch.float32 if dtype in _HALF_TYPES else dtype


def _kernel_input(input, work, kernels):
    """The input as the kernels take it: in the work dtype; the Triton kernels load float16 / bfloat16 themselves
    (computing in float32, writing the output in the input's dtype), so no float32 copy is made for them."""
    return input if kernels == "triton" and input.dtype in _HALF_TYPES else input.to(work)


def _want_grad(input):
    return torch.is_grad_enabled() and input.requires_grad


def class_loss(spec, input, target, weight, *, kernels="torch", inplace_backward=False):
    """cross_entropy (index or probability targets) and nll_loss on tensors (``spec``: ClassLossSpec); ``kernels``:
    the generated kernels that run in the ops (``torch``, or ``triton`` for ``backend="triton"``, which also takes
    ``inplace_backward``: the gradient written into the logits' buffer, see :class:`_RowsInPlace`)."""
    layout, reduction, ignore_index = spec.layout, spec.reduction, spec.ignore_index
    if not layout.probability:  # torch differentiates a probability target and its weight, not these weights
        sem.check_differentiable(sem.nll_forward_name(input.ndim), weight=weight)
    dtype = torch.promote_types(input.dtype, target.dtype) if layout.probability else input.dtype
    work = work_dtype(dtype)
    classes, want_grad = layout.num_classes, _want_grad(input)
    z = sem.class_rows(torch, _kernel_input(input, work, kernels))
    w = torch.ones(classes, dtype=work, device=input.device) if weight is None else weight.to(work)
    lse = None
    given = sem.with_neutral_options(spec.kernel_options())
    options = [given[name] for name in sem.KERNEL_OPTIONS]  # the ops take them in the table's order
    in_place = inplace_backward and want_grad and spec.kernel != "nll"
    if layout.probability:
        y = sem.class_rows(torch, target.to(work))
        if in_place:
            loss, lse = _RowsInPlace.apply(z, y, w, ignore_index, options, reduction == "mean", True)
        else:
            loss, _, lse = cross_entropy_prob_rows(z, y, w, options, reduction == "mean", want_grad, kernels)
        denominator = sem.probability_mean_denominator(layout)
    else:
        t = target.reshape(-1).to(torch.int64)
        if spec.kernel == "nll":
            loss, row_weight, _ = nll_rows(z, t, w, ignore_index, want_grad, kernels)
        elif in_place:
            loss, row_weight, lse = _RowsInPlace.apply(z, t, w, ignore_index, options, reduction == "mean", False)
        else:
            loss, row_weight, _, lse = cross_entropy_rows(z, t, w, ignore_index, options, reduction == "mean",
                                                          want_grad, kernels)
        denominator = row_weight.sum()
        if reduction == "mean":  # ignored rows get gradient 0 even when W == 0 (upstream 1/W = inf)
            loss = torch.where(t == ignore_index, 0, loss)
    out = sem.reduce_loss(loss, reduction, denominator, layout.out_shape).to(dtype)
    if classes == 0:
        out = out + spec.no_class_row_loss()
    return (out, lse.detach().reshape(layout.out_shape)) if spec.return_lse else out


def softmax_like(name, input, dim, *, kernels="torch"):
    """softmax / log_softmax along ``dim`` on tensors (in the work dtype on every kernel backend: the output is what
    the backward reads, so it is kept unrounded)."""
    work = work_dtype(input.dtype)
    rows = sem.last_dim_rows(torch, input.to(work), dim)
    op = softmax_rows if name == "softmax" else log_softmax_rows
    return sem.from_last_dim_rows(torch, op(rows, kernels), input.shape, dim).to(input.dtype)


def _flat(tensor, shape, dtype):
    return tensor.to(dtype).expand(shape).contiguous().reshape(-1)


def elementwise_loss(spec, input, target, *, weight=None, pos_weight=None, kernels="torch"):
    """binary_cross_entropy (``bce``), ``bce_with_logits`` and ``kl_div`` on tensors (``spec``: ElementwiseSpec)."""
    name, shape = spec.kernel, spec.shape
    sem.check_differentiable(spec.function, weight=weight, pos_weight=pos_weight)  # torch: the target only
    dtype = torch.promote_types(input.dtype, target.dtype)
    work, want_grad = work_dtype(dtype), _want_grad(input)
    x, t = _flat(input, shape, _kernel_input(input, work, kernels).dtype), _flat(target, shape, work)
    if name == "kl_div":
        loss, _ = kl_div_elements(x, t, spec.log_target, want_grad, kernels)
    else:
        w = torch.ones_like(x) if weight is None else _flat(weight, shape, work)
        if name == "bce":
            loss, _ = bce_elements(x, t, w, want_grad, kernels)
        else:
            pw = torch.ones_like(x) if pos_weight is None else _flat(pos_weight, shape, work)
            loss, _ = bce_with_logits_elements(x, t, pw, w, want_grad, kernels)
    return sem.reduce_loss(loss, spec.reduction, spec.denominator, shape).to(dtype)
