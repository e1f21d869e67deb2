"""The public functions of :mod:`symxent.functional`, mirroring ``torch.nn.functional``.

Same signatures, defaults, semantics and error messages as torch (shared SEMANTICS.md), plus three
keyword-only arguments:

- ``backend``: ``"numpy"`` | ``"c"`` (NumPy arrays, no torch import), ``"torch"`` (tensors, autograd through a
  custom op whose backward is the generated gradient), ``"cuda"`` (float32 / float16 / bfloat16 CUDA tensors,
  the generated CUDA kernels; autograd whose backward is the gradient the forward pass generated).
  Default: ``"torch"`` for tensors, ``"numpy"`` otherwise.
- ``return_grad`` (numpy / c): return ``(output, grad_input)``, the gradient with respect to ``input`` for
  upstream gradient 1 when the output is a scalar, otherwise for ``grad_output``.
- ``grad_output`` (numpy / c, with ``return_grad``): the upstream gradient, an array of the output's shape
  (``reduction="none"``, softmax, log_softmax), or a scalar for a scalar output.

:func:`cross_entropy` has three more keyword-only options: ``lse_square_scale`` (the z-loss) and ``return_lse``
on every backend, ``inplace_backward`` on ``backend="cuda"`` (the others accept only its default).
"""
from __future__ import annotations

from .. import semantics as sem
from .dispatch import TENSOR_BACKENDS, check_grad_request, cuda_options, resolve_backend
from .autocast import autocast_inputs


def _implementation(backend):
    if backend in ("torch", "triton"):  # the same ops; triton's run its generated Triton kernels
        from . import torch_ops

        return torch_ops
    if backend == "cuda":
        from . import cuda_ops

        return cuda_ops
    from . import arrays

    return arrays


def _arrays(backend, *values):
    if backend in TENSOR_BACKENDS:
        return values
    from .arrays import as_array

    return tuple(as_array(v) for v in values)


def _grad_kwargs(backend, return_grad, grad_output):
    check_grad_request(backend, return_grad, grad_output)
    if backend == "triton":
        return dict(kernels="triton")
    return {} if backend in TENSOR_BACKENDS else dict(backend=backend, return_grad=return_grad, grad_output=grad_output)


# --- cross_entropy / nll_loss ----------------------------------------------------------------------

def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, *, backend=None, return_grad=False, grad_output=None, lse_square_scale=0.0,
                  return_lse=False, inplace_backward=False):
    r"""Cross-entropy from logits ``input`` (N, C, d1..dK) or (C,), as ``torch.nn.functional.cross_entropy``.

    Index targets:
    :math:`\ell_n = (1-\varepsilon)(-w_{y_n} \log s_{n,y_n}) + \frac{\varepsilon}{C}\sum_c (-w_c \log s_{n,c})`, 0 where ``y_n == ignore_index``; ``mean`` divides by :math:`W = \sum_n w_{y_n}` over non-ignored rows.
    Probability targets (same shape as input): :math:`\ell_n = -\sum_c w_c \tilde y_{n,c} \log s_{n,c}`,
    :math:`\tilde y = (1-\varepsilon) y + \varepsilon / C`; ``mean`` divides by the number of rows.

    Beyond torch (Liger-Kernel's options):

    - ``lse_square_scale`` :math:`\lambda`: the z-loss :math:`+\lambda (\log \sum_c e^{z_{n,c}})^2` in each counted
      row's loss, not weighted by the class weight; ``mean`` divides it by the number of counted rows (the
      cross-entropy by W), ``sum`` sums it, ``none`` adds it per row (0 on ignored rows); label smoothing
      leaves it unchanged. In torch: ``F.cross_entropy(x, t, ...) + lam * (lse[keep]**2).sum() / keep.sum()``;
    - ``return_lse``: return ``(loss, lse)``, ``lse`` the logsumexp of each row in the shape of
      ``reduction="none"`` (not differentiable; float32 on cuda, the compute dtype elsewhere);
    - ``inplace_backward`` (``backend="cuda"`` only): the forward pass writes the gradient into the logits' buffer (no extra memory;
      the logits are overwritten, so nothing else may use them afterwards; (N, C, d1..dK) inputs are laid
      out as rows in a copy first). Default: the input is left intact.
    """
    input, target, weight = autocast_inputs("cross_entropy", input, target, weight)
    backend = resolve_backend(backend, input)
    reduction = sem.reduction_argument(reduction, size_average, reduce)
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    kwargs.update(cuda_options(backend, inplace_backward=inplace_backward))
    input, target, weight = _arrays(backend, input, target, weight)
    eps = sem.label_smoothing_value(label_smoothing)
    z_scale = sem.lse_square_scale_value(lse_square_scale)
    if tuple(input.shape) == tuple(target.shape):
        layout = sem.probability_target_layout(input.shape, target.dtype, ignore_index)
        name = "cross_entropy_prob"
    else:
        layout = sem.index_target_layout(input.shape, target.shape, target.dtype)
        name = "cross_entropy"
    sem.check_class_weight(weight, layout.num_classes, input.dtype, probability=layout.probability)
    options = (("label_smoothing", eps), ("lse_square_scale", z_scale))  # the kernels' scalar options (by name)
    spec = sem.ClassLossSpec(name, layout, reduction, ignore_index, options, bool(return_lse))
    return _implementation(backend).class_loss(spec, input, target, weight, **kwargs)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", *,
             backend=None, return_grad=False, grad_output=None):
    r"""Negative log-likelihood of log-probabilities ``input``, as ``torch.nn.functional.nll_loss``.

    :math:`\ell_n = -w_{y_n}\, \mathrm{input}_{n, y_n}`, 0 where ``y_n == ignore_index``; ``mean`` divides by
    :math:`W = \sum_n w_{y_n}` over non-ignored rows.
    """
    input, target, weight = autocast_inputs("nll_loss", input, target, weight)
    backend = resolve_backend(backend, input)
    reduction = sem.reduction_argument(reduction, size_average, reduce)
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    input, target, weight = _arrays(backend, input, target, weight)
    layout = sem.index_target_layout(input.shape, target.shape, target.dtype)
    sem.check_class_weight(weight, layout.num_classes, input.dtype)
    spec = sem.ClassLossSpec("nll", layout, reduction, ignore_index)
    return _implementation(backend).class_loss(spec, input, target, weight, **kwargs)


# --- softmax / log_softmax -----------------------------------------------------------------------------

def _softmax_like(name, input, dim, dtype, backend, return_grad, grad_output):
    (input,) = autocast_inputs(name, input, dtype=dtype)
    backend = resolve_backend(backend, input)
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    (input,) = _arrays(backend, input)
    input_dtype = input.dtype
    if dtype is not None:  # the output in dtype; the gradient (autograd's through .to on tensors) in the input's
        input = input.to(dtype) if backend in TENSOR_BACKENDS else input.astype(dtype)
    dim = sem.softmax_dim(dim, input.ndim, name)
    result = _implementation(backend).softmax_like(name, input, dim, **kwargs)
    if return_grad:
        out, grad = result
        return out, grad.astype(input_dtype, copy=False)
    return result


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend=None, return_grad=False, grad_output=None):
    r"""Softmax along ``dim``: :math:`s_k = e^{x_k} / \sum_j e^{x_j}`, as ``torch.nn.functional.softmax``."""
    return _softmax_like("softmax", input, dim, dtype, backend, return_grad, grad_output)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, backend=None, return_grad=False, grad_output=None):
    r"""Log-softmax along ``dim``: :math:`x_k - \log \sum_j e^{x_j}`, as ``torch.nn.functional.log_softmax``."""
    return _softmax_like("log_softmax", input, dim, dtype, backend, return_grad, grad_output)


# --- binary cross-entropy ------------------------------------------------------------------------------

def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean", *,
                         backend=None, return_grad=False, grad_output=None):
    r"""BCE on probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    :math:`\ell = -w (t \max(\log x, -100) + (1 - t) \max(\log(1 - x), -100))`; input and target in [0, 1];
    ``mean`` over all elements.
    """
    input, target, weight = autocast_inputs("binary_cross_entropy", input, target, weight)
    backend = resolve_backend(backend, input)
    reduction = sem.reduction_argument(reduction, size_average, reduce)
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    input, target, weight = _arrays(backend, input, target, weight)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({sem.size_repr(target.shape)}) that is different to the input size "
                         f"({sem.size_repr(input.shape)}) is deprecated. Please ensure they have the same size.")
    if weight is not None:
        sem.check_expands_to(weight.shape, target.shape)
    if sem.dtype_name(target.dtype) != sem.dtype_name(input.dtype):
        raise RuntimeError(f"Found dtype {sem.dtype_name(target.dtype)} but expected {sem.dtype_name(input.dtype)}")
    shape = tuple(input.shape)
    spec = sem.ElementwiseSpec("bce", shape, reduction, sem.numel(shape))
    return _implementation(backend).elementwise_loss(spec, input, target, weight=weight, **kwargs)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None, *, backend=None, return_grad=False, grad_output=None):
    r"""BCE on logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    :math:`\ell = w ((1 - t) x - (1 + (p_w - 1) t) \log\sigma(x))`; ``pos_weight`` broadcasts over the last
    (class) dimension; ``mean`` over all elements.
    """
    input, target, weight, pos_weight = autocast_inputs("binary_cross_entropy_with_logits", input, target, weight, pos_weight)
    backend = resolve_backend(backend, input)
    reduction = sem.reduction_argument(reduction, size_average, reduce)
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    input, target, weight, pos_weight = _arrays(backend, input, target, weight, pos_weight)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({sem.size_repr(target.shape)}) must be the same as input size "
                         f"({sem.size_repr(input.shape)})")
    shape = tuple(input.shape)
    if sem.is_integral(target.dtype):
        raise RuntimeError(f"result type {sem.dtype_name(input.dtype)} can't be cast to the desired output type "
                           f"{sem.dtype_name(target.dtype)}")
    if pos_weight is not None:
        sem.check_result_shape(sem.broadcast_shape(pos_weight.shape, shape), shape)
    if weight is not None:
        sem.check_result_shape(sem.broadcast_shape(shape, weight.shape), shape)
    spec = sem.ElementwiseSpec("bce_with_logits", shape, reduction, sem.numel(shape))
    return _implementation(backend).elementwise_loss(spec, input, target, weight=weight, pos_weight=pos_weight,
                                                     **kwargs)


# --- kl_div ----------------------------------------------------------------------------------------------

def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False, *, backend=None,
           return_grad=False, grad_output=None):
    r"""KL divergence with log-probability ``input``, as ``torch.nn.functional.kl_div``.

    Pointwise :math:`t (\log t - x)` (0 where t = 0), or :math:`e^{t} (t - x)` with ``log_target``;
    ``batchmean`` divides the sum by ``input.size(0)``, ``mean`` by the number of elements (torch warns).
    """
    input, target = autocast_inputs("kl_div", input, target)
    backend = resolve_backend(backend, input)
    legacy = size_average is not None or reduce is not None
    reduction = sem.reduction_argument(reduction, size_average, reduce, allowed=sem.KL_REDUCTIONS)
    if reduction == "mean" and not legacy:
        sem.kl_div_warn_mean()
    kwargs = _grad_kwargs(backend, return_grad, grad_output)
    input, target = _arrays(backend, input, target)
    if sem.is_integral(input.dtype) or sem.is_integral(target.dtype):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    shape = sem.broadcast_shape(target.shape, input.shape)
    if reduction == "batchmean":
        reduction, denominator = "mean", (input.shape[0] if input.ndim else 1)
    else:
        denominator = sem.numel(shape)
    spec = sem.ElementwiseSpec("kl_div", shape, reduction, denominator, bool(log_target))
    return _implementation(backend).elementwise_loss(spec, input, target, **kwargs)
