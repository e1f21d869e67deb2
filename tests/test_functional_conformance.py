"""symxent.functional against torch.nn.functional: values and input gradients, every function and backend.

The reference is torch itself (forward in the same dtype, gradient by torch autograd with the same
grad_output). Array backends get NumPy copies of the same inputs and return their gradient with
``return_grad=True``; the torch backend is differentiated by autograd through its custom ops.
"""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf

BACKENDS = ["numpy", "c", "torch"]
DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["none", "mean", "sum"]
TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-10, atol=1e-12),
       torch.float16: dict(rtol=4e-3, atol=4e-3), torch.bfloat16: dict(rtol=3e-2, atol=3e-2)}


# --- calling both sides the same way ---------------------------------------------------------------

def _grad_output(shape, dtype, seed=7):
    """A non-uniform upstream gradient (both signs) for non-scalar outputs."""
    g = torch.linspace(-1.5, 2.0, max(int(np.prod(shape)), 1), dtype=torch.float64)[: int(np.prod(shape))]
    g = g[torch.randperm(g.numel(), generator=torch.Generator().manual_seed(seed))]
    return g.reshape(shape).to(dtype)


def _torch_call(fn, x, args, kwargs):
    """(output, grad of input) by torch autograd; a non-scalar output gets a non-uniform grad_output."""
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    grad = torch.zeros_like(x)
    if out.requires_grad:
        go = torch.ones_like(out) if out.dim() == 0 else _grad_output(out.shape, out.dtype)
        (grad,) = torch.autograd.grad(out, x, go, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
    return out.detach(), grad


def _numpy(value):
    return value.detach().numpy() if isinstance(value, torch.Tensor) else value


def call_ours(name, backend, x, args=(), kwargs=None, out_shape=None):
    """symxent.functional.<name> on the given backend: (output, input gradient) as tensors.

    Array backends return the gradient themselves (``return_grad=True``, with the same non-uniform
    ``grad_output`` as the torch side when the output, of shape ``out_shape``, is not a scalar).
    """
    kwargs = dict(kwargs or {})
    fn = getattr(sxf, name)
    if backend == "torch":
        return _torch_call(lambda *a, **k: fn(*a, backend="torch", **k), x, args, kwargs)
    np_args = [_numpy(a) for a in args]
    np_kwargs = {k: _numpy(v) for k, v in kwargs.items()}
    if out_shape is None:
        out_shape = np.shape(fn(_numpy(x), *np_args, backend=backend, **np_kwargs))
    if len(out_shape) == 0:
        out, grad = fn(_numpy(x), *np_args, backend=backend, return_grad=True, **np_kwargs)
    else:
        go = _grad_output(out_shape, torch.float64).numpy()
        out, grad = fn(_numpy(x), *np_args, backend=backend, return_grad=True, grad_output=go, **np_kwargs)
    assert isinstance(out, (np.ndarray, np.generic)) and isinstance(grad, np.ndarray)
    return torch.from_numpy(np.array(out)), torch.from_numpy(np.array(grad))


def call_torch(name, x, args=(), kwargs=None):
    return _torch_call(getattr(F, name), x, args, dict(kwargs or {}))


def assert_matches(ours, ref, dtype):
    out, grad = ours
    ref_out, ref_grad = ref
    assert out.shape == ref_out.shape, (out.shape, ref_out.shape)
    assert grad.shape == ref_grad.shape, (grad.shape, ref_grad.shape)
    assert out.dtype == ref_out.dtype and grad.dtype == ref_grad.dtype, (out.dtype, ref_out.dtype, grad.dtype)
    torch.testing.assert_close(out, ref_out, equal_nan=True, **TOL[dtype])
    torch.testing.assert_close(grad, ref_grad, equal_nan=True, **TOL[dtype])


def check(name, backend, dtype, x, args=(), kwargs=None):
    ref = call_torch(name, x, args, kwargs)
    assert_matches(call_ours(name, backend, x, args, kwargs, out_shape=tuple(ref[0].shape)), ref, dtype)


# --- cross_entropy ---------------------------------------------------------------------------------

def _logits(shape, dtype, seed=0):
    return (torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3).to(dtype)


def _targets(shape, classes, seed=1, ignore=None, ignore_every=3):
    t = torch.randint(0, classes, shape, generator=torch.Generator().manual_seed(seed))
    if ignore is not None:
        t.view(-1)[::ignore_every] = ignore
    return t


def _probabilities(shape, dtype, class_dim=1, seed=2):
    p = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (p / p.sum(class_dim, keepdim=True)).to(dtype)


C = 5
# name -> (input shape, target builder(dtype), kwargs builder(dtype))
CE_CASES = {
    "plain": ((6, C), lambda d: _targets((6,), C), lambda d: {}),
    "weight": ((6, C), lambda d: _targets((6,), C), lambda d: dict(weight=torch.rand(C, dtype=d) + 0.2)),
    "ignore_default_-100": ((6, C), lambda d: _targets((6,), C, ignore=-100), lambda d: {}),
    "ignore_inside": ((7, C), lambda d: _targets((7,), C, ignore=2), lambda d: dict(ignore_index=2)),
    "ignore_outside_positive": ((6, C), lambda d: _targets((6,), C, ignore=C + 3), lambda d: dict(ignore_index=C + 3)),
    "ignore_weight": ((7, C), lambda d: _targets((7,), C, ignore=1),
                      lambda d: dict(ignore_index=1, weight=torch.rand(C, dtype=d) + 0.2)),
    "all_ignored": ((4, C), lambda d: torch.full((4,), -100), lambda d: {}),
    "zero_weight_sum": ((3, C), lambda d: torch.tensor([0, 0, 1]),
                        lambda d: dict(weight=torch.tensor([0.0, 0.0, 1, 1, 1], dtype=d))),
    "smoothing": ((6, C), lambda d: _targets((6,), C), lambda d: dict(label_smoothing=0.2)),
    "smoothing_one": ((6, C), lambda d: _targets((6,), C), lambda d: dict(label_smoothing=1.0)),
    "smoothing_negative_is_none": ((6, C), lambda d: _targets((6,), C), lambda d: dict(label_smoothing=-0.3)),
    "smoothing_weight": ((6, C), lambda d: _targets((6,), C),
                         lambda d: dict(label_smoothing=0.15, weight=torch.rand(C, dtype=d) + 0.2)),
    "smoothing_ignore": ((7, C), lambda d: _targets((7,), C, ignore=-100), lambda d: dict(label_smoothing=0.3)),
    "smoothing_weight_ignore_inside": ((7, C), lambda d: _targets((7,), C, ignore=3),
                                       lambda d: dict(label_smoothing=0.1, ignore_index=3,
                                                      weight=torch.rand(C, dtype=d) + 0.2)),
    "smoothing_all_ignored": ((3, C), lambda d: torch.full((3,), 4),
                              lambda d: dict(label_smoothing=0.1, ignore_index=4)),
    "kdim_index": ((2, C, 3, 2), lambda d: _targets((2, 3, 2), C, ignore=-100, ignore_every=5), lambda d: {}),
    "kdim_3d_weight_smoothing": ((3, C, 4), lambda d: _targets((3, 4), C, ignore=-100, ignore_every=4),
                                 lambda d: dict(weight=torch.rand(C, dtype=d) + 0.2, label_smoothing=0.2)),
    "kdim_5d": ((2, C, 2, 2, 2), lambda d: _targets((2, 2, 2, 2), C), lambda d: {}),
    "unbatched": ((C,), lambda d: torch.tensor(3), lambda d: {}),
    "unbatched_smoothing_weight": ((C,), lambda d: torch.tensor(1),
                                   lambda d: dict(label_smoothing=0.2, weight=torch.rand(C, dtype=d) + 0.2)),
    "unbatched_ignored": ((C,), lambda d: torch.tensor(-100), lambda d: {}),
    "byte_target": ((6, C), lambda d: _targets((6,), C).to(torch.uint8), lambda d: {}),
    "empty_batch": ((0, C), lambda d: torch.zeros(0, dtype=torch.long), lambda d: {}),
    "empty_batch_smoothing": ((0, C), lambda d: torch.zeros(0, dtype=torch.long), lambda d: dict(label_smoothing=0.1)),
    "prob": ((6, C), lambda d: _probabilities((6, C), d), lambda d: {}),
    "prob_unnormalised": ((4, C), lambda d: torch.rand(4, C, dtype=d) * 2, lambda d: {}),
    "prob_smoothing": ((6, C), lambda d: _probabilities((6, C), d), lambda d: dict(label_smoothing=0.25)),
    "prob_weight_smoothing": ((6, C), lambda d: _probabilities((6, C), d),
                              lambda d: dict(weight=torch.rand(C, dtype=d) + 0.2, label_smoothing=0.1)),
    "prob_negative_ignore_index": ((6, C), lambda d: _probabilities((6, C), d), lambda d: dict(ignore_index=-7)),
    "prob_kdim": ((2, C, 3), lambda d: _probabilities((2, C, 3), d), lambda d: dict(label_smoothing=0.1)),
    "prob_unbatched": ((C,), lambda d: _probabilities((C,), d, class_dim=0), lambda d: {}),
    "prob_empty_batch": ((0, C), lambda d: torch.zeros(0, C, dtype=d), lambda d: {}),
    # zero denominators under mean (torch: NaN loss and gradient, 0 on ignored rows)
    "zero_weight_sum_smoothing": ((4, C), lambda d: torch.tensor([0, 1, 0, 1]),
                                  lambda d: dict(weight=torch.tensor([0.0, 0.0, 1, 1, 1], dtype=d),
                                                 label_smoothing=0.1)),
    "zero_weight_sum_smoothing_ignore": ((4, C), lambda d: torch.tensor([0, -100, 1, 1]),
                                         lambda d: dict(weight=torch.tensor([0.0, 0.0, 1, 1, 1], dtype=d),
                                                        label_smoothing=0.2)),
    "all_weights_zero": ((3, C), lambda d: torch.tensor([0, 4, 2]), lambda d: dict(weight=torch.zeros(C, dtype=d))),
    "all_weights_zero_smoothing": ((3, C), lambda d: torch.tensor([0, 4, 2]),
                                   lambda d: dict(weight=torch.zeros(C, dtype=d), label_smoothing=0.3)),
    "prob_all_weights_zero": ((3, C), lambda d: _probabilities((3, C), d), lambda d: dict(weight=torch.zeros(C, dtype=d))),
    "prob_all_weights_zero_smoothing": ((3, C), lambda d: _probabilities((3, C), d),
                                        lambda d: dict(weight=torch.zeros(C, dtype=d), label_smoothing=0.3)),
    # no classes at all (torch: the mean of probability targets divides by numel / C = 0/0)
    "prob_zero_classes": ((5, 0), lambda d: torch.rand(5, 0, dtype=d), lambda d: {}),
    "prob_zero_classes_smoothing": ((5, 0), lambda d: torch.rand(5, 0, dtype=d), lambda d: dict(label_smoothing=0.1)),
    "prob_zero_classes_kdim": ((2, 0, 3), lambda d: torch.rand(2, 0, 3, dtype=d), lambda d: {}),
    "prob_zero_rows_zero_classes": ((0, 0), lambda d: torch.rand(0, 0, dtype=d), lambda d: {}),
    "zero_classes_all_ignored": ((4, 0), lambda d: torch.full((4,), -100), lambda d: {}),
    "zero_classes_all_ignored_smoothing": ((4, 0), lambda d: torch.full((4,), -100),
                                           lambda d: dict(label_smoothing=0.1)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CE_CASES))
def test_cross_entropy(case, backend, dtype, reduction):
    shape, target, kwargs = CE_CASES[case]
    x = _logits(shape, dtype)
    check("cross_entropy", backend, dtype, x, (target(dtype),), dict(kwargs(dtype), reduction=reduction))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", ["plain", "weight", "smoothing_weight_ignore_inside", "prob_smoothing", "kdim_index"])
def test_cross_entropy_half_precision_torch_backend(case, dtype):
    shape, target, kwargs = CE_CASES[case]
    x = _logits(shape, dtype)
    for reduction in REDUCTIONS:
        check("cross_entropy", "torch", dtype, x, (target(dtype),), dict(kwargs(dtype), reduction=reduction))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_return_grad_leaves_the_output_unchanged(backend):
    """Folding mean's 1/W into the kernel weights (gradient wanted) gives the same loss as without."""
    x, t = _logits((6, C), torch.float32).numpy(), _targets((6,), C, ignore=-100).numpy()
    w = (torch.rand(C) + 0.2).numpy()
    for reduction in REDUCTIONS:
        for smoothing in [0.0, 0.2]:
            kwargs = dict(weight=w, reduction=reduction, label_smoothing=smoothing, backend=backend)
            plain = sxf.cross_entropy(x, t, **kwargs)
            go = None if reduction != "none" else np.ones(6, np.float32)
            out, _ = sxf.cross_entropy(x, t, return_grad=True, grad_output=go, **kwargs)
            np.testing.assert_allclose(out, plain, rtol=2e-6)


def test_cross_entropy_probability_target_promotes_dtype():
    x = _logits((4, C), torch.float32)
    y = _probabilities((4, C), torch.float64)
    for backend in BACKENDS:
        out, grad = call_ours("cross_entropy", backend, x, (y,))
        ref_out, ref_grad = call_torch("cross_entropy", x, (y,))
        assert out.dtype == ref_out.dtype == torch.float64 and grad.dtype == ref_grad.dtype == torch.float32
        torch.testing.assert_close(out, ref_out)
        torch.testing.assert_close(grad, ref_grad)


def test_legacy_size_average_and_reduce_warn_like_torch():
    x, t = _logits((4, C), torch.float64), _targets((4,), C)
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") as ours:
            out = sxf.cross_entropy(x.numpy(), t.numpy(), size_average=size_average, reduce=reduce)
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            ref = F.cross_entropy(x, t, size_average=size_average, reduce=reduce)
        assert str(ours[0].message) == str(theirs[0].message)
        np.testing.assert_allclose(out, ref.numpy(), rtol=1e-12)


# --- nll_loss ----------------------------------------------------------------------------------------

NLL_CASES = {
    name: CE_CASES[name] for name in (
        "plain", "weight", "ignore_default_-100", "ignore_inside", "ignore_outside_positive", "ignore_weight",
        "all_ignored", "zero_weight_sum", "kdim_index", "kdim_5d", "unbatched", "unbatched_ignored",
        "byte_target", "empty_batch", "all_weights_zero", "zero_classes_all_ignored")
}
NLL_CASES["kdim_3d_weight"] = ((3, C, 4), lambda d: _targets((3, 4), C, ignore=-100, ignore_every=4),
                               lambda d: dict(weight=torch.rand(C, dtype=d) + 0.2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(NLL_CASES))
def test_nll_loss(case, backend, dtype, reduction):
    shape, target, kwargs = NLL_CASES[case]
    class_dim = 0 if len(shape) == 1 else 1
    logp = torch.log_softmax(_logits(shape, torch.float64), class_dim).to(dtype)
    args, kwargs = (target(dtype),), dict(kwargs(dtype), reduction=reduction)
    ref = call_torch("nll_loss", logp, args, kwargs)
    ours = call_ours("nll_loss", backend, logp, args, kwargs, out_shape=tuple(ref[0].shape))
    assert_matches(ours, ref, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_input_with_target_of_size_one(backend):
    # torch accepts a (1,) target for a (C,) input (its backward then fails: values only)
    x = _logits((C,), torch.float64)
    for name in ["nll_loss", "cross_entropy"]:
        for reduction in REDUCTIONS:
            ours = getattr(sxf, name)(x if backend == "torch" else x.numpy(), torch.tensor([2]) if backend == "torch"
                                      else np.array([2]), reduction=reduction, backend=backend)
            ref = getattr(F, name)(x, torch.tensor([2]), reduction=reduction)
            assert np.shape(ours) == ref.shape
            np.testing.assert_allclose(np.asarray(ours), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_nll_loss_half_precision_torch_backend(dtype):
    logp = torch.log_softmax(_logits((6, C), torch.float64), 1).to(dtype)
    for reduction in REDUCTIONS:
        check("nll_loss", "torch", dtype, logp, (_targets((6,), C, ignore=-100),),
              dict(weight=(torch.rand(C) + 0.2).to(dtype), reduction=reduction))


# --- softmax / log_softmax -----------------------------------------------------------------------------

SOFTMAX_CASES = {
    "2d_dim1": ((4, 6), 1), "2d_dim0": ((4, 6), 0), "2d_dim-1": ((4, 6), -1), "3d_dim1": ((2, 3, 4), 1),
    "3d_dim2": ((2, 3, 4), 2), "4d_dim-3": ((2, 3, 2, 2), -3), "1d": ((7,), 0), "0d": ((), 0),
    "0d_dim-1": ((), -1), "empty_rows": ((0, 5), 1), "empty_classes": ((3, 0), 1),
}


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(SOFTMAX_CASES))
def test_softmax_family(case, backend, dtype, name):
    shape, dim = SOFTMAX_CASES[case]
    check(name, backend, dtype, _logits(shape, dtype), (dim,))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_softmax_family_half_precision_torch_backend(name, dtype):
    check(name, "torch", dtype, _logits((3, 4, 5), dtype), (1,))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_implicit_dim_and_dtype_argument(name, backend):
    for shape in [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 2)]:
        x = _logits(shape, torch.float32)
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been deprecated"):
            ours = call_ours(name, backend, x)
        with pytest.warns(UserWarning):
            ref = call_torch(name, x)
        assert_matches(ours, ref, torch.float32)
    # dtype=: the output in that dtype, the gradient in the input's (torch's), the same values
    x = _logits((3, 4), torch.float32)
    ours = call_ours(name, backend, x, (1,), dict(dtype=np.float64 if backend != "torch" else torch.float64))
    ref = call_torch(name, x, (1,), dict(dtype=torch.float64))
    assert ours[0].dtype == ref[0].dtype == torch.float64 and ours[1].dtype == ref[1].dtype == torch.float32
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours[1], ref[1], **TOL[torch.float32])


# --- binary_cross_entropy ------------------------------------------------------------------------------

def _probs(shape, dtype, seed=3):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.9 + 0.05).to(dtype)


BCE_CASES = {
    "plain": ((4, 3), lambda d: {}),
    "weight_full": ((4, 3), lambda d: dict(weight=torch.rand(4, 3, dtype=d))),
    "weight_broadcast": ((4, 3), lambda d: dict(weight=torch.rand(3, dtype=d))),
    "weight_broadcast_column": ((4, 3), lambda d: dict(weight=torch.rand(4, 1, dtype=d))),
    "3d": ((2, 3, 2), lambda d: {}),
    "0d": ((), lambda d: {}),
    "empty": ((0, 3), lambda d: {}),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BCE_CASES))
def test_binary_cross_entropy(case, backend, dtype, reduction):
    shape, kwargs = BCE_CASES[case]
    p, t = _probs(shape, dtype), _probs(shape, dtype, seed=4)
    check("binary_cross_entropy", backend, dtype, p, (t,), dict(kwargs(dtype), reduction=reduction))


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_cross_entropy_hard_targets_and_saturated_probabilities(backend):
    # exactly 0 and 1 in input (logs clamped at -100) and in target; loss value only at the endpoints
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30, 1 - 2**-24], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    for reduction in REDUCTIONS:
        ours = getattr(sxf, "binary_cross_entropy")(p if backend == "torch" else p.numpy(), t if backend == "torch"
                                                    else t.numpy(), reduction=reduction, backend=backend)
        ref = F.binary_cross_entropy(p, t, reduction=reduction)
        torch.testing.assert_close(torch.as_tensor(np.asarray(ours)), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_binary_cross_entropy_half_precision_torch_backend(dtype):
    p, t = _probs((4, 3), dtype), _probs((4, 3), dtype, seed=4)
    for reduction in REDUCTIONS:
        check("binary_cross_entropy", "torch", dtype, p, (t,), dict(reduction=reduction))


BCEL_CASES = {
    "plain": ((4, 3), lambda d: {}),
    "pos_weight": ((4, 3), lambda d: dict(pos_weight=torch.rand(3, dtype=d) * 3)),
    "weight": ((4, 3), lambda d: dict(weight=torch.rand(4, 3, dtype=d))),
    "weight_and_pos_weight": ((2, 4, 3), lambda d: dict(weight=torch.rand(4, 1, dtype=d),
                                                        pos_weight=torch.rand(3, dtype=d) * 3)),
    "0d": ((), lambda d: {}),
    "empty": ((0, 3), lambda d: dict(pos_weight=torch.rand(3, dtype=d))),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BCEL_CASES))
def test_binary_cross_entropy_with_logits(case, backend, dtype, reduction):
    shape, kwargs = BCEL_CASES[case]
    x = _logits(shape, dtype)
    t = _probs(shape, dtype, seed=5)
    check("binary_cross_entropy_with_logits", backend, dtype, x, (t,), dict(kwargs(dtype), reduction=reduction))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_binary_cross_entropy_with_logits_half_precision_torch_backend(dtype):
    x, t = _logits((4, 3), dtype), _probs((4, 3), dtype, seed=5)
    for reduction in REDUCTIONS:
        check("binary_cross_entropy_with_logits", "torch", dtype, x, (t,),
              dict(reduction=reduction, pos_weight=torch.tensor([0.5, 1.0, 2.0], dtype=dtype)))


# --- kl_div ----------------------------------------------------------------------------------------------

KL_CASES = {
    "probabilities": (lambda d: _probabilities((4, 5), d), False),
    "with_zeros": (lambda d: torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], dtype=d), False),
    "log_target": (lambda d: torch.log(_probabilities((4, 5), d)), True),
}


@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean", "mean"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(KL_CASES))
def test_kl_div(case, backend, dtype, reduction):
    target, log_target = KL_CASES[case]
    t = target(dtype)
    x = torch.log_softmax(_logits(t.shape, torch.float64), -1).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check("kl_div", backend, dtype, x, (t,), dict(reduction=reduction, log_target=log_target))


@pytest.mark.parametrize("backend", BACKENDS)
def test_kl_div_broadcasting_and_mean_warning(backend):
    x = torch.log_softmax(_logits((5,), torch.float64), -1)
    t = _probabilities((3, 5), torch.float64)
    for reduction in ["none", "sum", "batchmean"]:
        check("kl_div", backend, torch.float64, x, (t,), dict(reduction=reduction))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        call_ours("kl_div", backend, x, (t,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_kl_div_half_precision_torch_backend(dtype):
    t = _probabilities((4, 5), dtype)
    x = torch.log_softmax(_logits((4, 5), torch.float64), -1).to(dtype)
    for reduction in ["none", "sum", "batchmean"]:
        check("kl_div", "torch", dtype, x, (t,), dict(reduction=reduction))


# --- backend selection, torch.compile, custom-op registration -------------------------------------------

def test_default_backend_is_torch_for_tensors_and_numpy_for_arrays():
    x, t = _logits((3, C), torch.float64), _targets((3,), C)
    assert isinstance(sxf.cross_entropy(x, t), torch.Tensor)
    out = sxf.cross_entropy(x.numpy(), t.numpy())
    assert isinstance(out, np.generic) and out.dtype == np.float64
    out = sxf.cross_entropy(x.numpy().tolist(), t.numpy().tolist())  # plain sequences are arrays too
    np.testing.assert_allclose(out, F.cross_entropy(x, t).item(), rtol=1e-12)


def test_cuda_backend_takes_tensors():  # the rest of backend="cuda": tests/test_functional_cuda_backend.py
    with pytest.raises(TypeError, match="backend='cuda' takes torch tensors"):
        sxf.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=np.int64), backend="cuda")


def test_torch_backend_gradient_is_the_registered_kernel_gradient():
    # the autograd graph node is the custom op's backward, not autograd through the forward
    x = _logits((3, C), torch.float32).requires_grad_(True)
    loss = sxf.cross_entropy(x, _targets((3,), C), backend="torch", reduction="sum")
    names = []
    node = loss.grad_fn
    while node is not None:
        names.append(type(node).__name__)
        node = node.next_functions[0][0] if node.next_functions else None
    assert any("symxent_cross_entropy_rows" in n for n in names), names
    assert not any("LogSoftmax" in n for n in names), names


@pytest.mark.parametrize("name,args,kwargs", [
    ("cross_entropy", lambda: (_targets((4,), C, ignore=-100),), dict(label_smoothing=0.1)),
    ("cross_entropy", lambda: (_targets((4,), C),), dict(reduction="none")),
    ("cross_entropy", lambda: (_probabilities((4, C), torch.float32),), {}),
    ("nll_loss", lambda: (_targets((4,), C),), {}),
    ("softmax", lambda: (1,), {}),
    ("log_softmax", lambda: (0,), {}),
    ("binary_cross_entropy", lambda: (_probs((4, C), torch.float32),), {}),
    ("binary_cross_entropy_with_logits", lambda: (_probs((4, C), torch.float32),), {}),
    ("kl_div", lambda: (_probabilities((4, C), torch.float32),), dict(reduction="batchmean")),
])
def test_torch_compile_fullgraph(name, args, kwargs):
    torch._dynamo.reset()
    fn = getattr(sxf, name)
    compiled = torch.compile(lambda x, *a: fn(x, *a, backend="torch", **kwargs), fullgraph=True, backend="aot_eager")
    x = _logits((4, C), torch.float32)
    if name == "binary_cross_entropy":
        x = torch.sigmoid(x)
    ours = _torch_call(compiled, x, args(), {})
    ref = _torch_call(getattr(F, name), x, args(), kwargs)
    assert_matches(ours, ref, torch.float32)


def test_torch_compile_inductor_cross_entropy():
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, t: sxf.cross_entropy(x, t, label_smoothing=0.1), fullgraph=True)
    x, t = _logits((8, C), torch.float32), _targets((8,), C, ignore=-100)
    assert_matches(_torch_call(compiled, x, (t,), {}),
                   _torch_call(F.cross_entropy, x, (t,), dict(label_smoothing=0.1)), torch.float32)


def test_custom_ops_pass_opcheck():
    from symxent.functional import torch_ops

    z = _logits((4, C), torch.float32).requires_grad_(True)
    t = _targets((4,), C, ignore=-100)
    w = torch.rand(C) + 0.5
    p = _probabilities((4, C), torch.float32)
    samples = [
        (torch_ops.cross_entropy_rows, (z, t, w, -100, [0.1, 1e-3], True, True)),  # smoothing, z-loss; mean
        (torch_ops.cross_entropy_rows, (z, t, w, -100, [0.1, 0.0], False, True)),
        (torch_ops.nll_rows, (z, t, w, -100, True)),
        (torch_ops.cross_entropy_prob_rows, (z, p, w, [0.1, 1e-3], True, True)),
        (torch_ops.softmax_rows, (z,)),
        (torch_ops.log_softmax_rows, (z,)),
        (torch_ops.bce_elements, (torch.sigmoid(z.detach()).reshape(-1).requires_grad_(True), p.reshape(-1),
                                  torch.ones(4 * C), True)),
        (torch_ops.bce_with_logits_elements, (z.detach().reshape(-1).requires_grad_(True), p.reshape(-1),
                                              torch.ones(4 * C), torch.ones(4 * C), True)),
        (torch_ops.kl_div_elements, (z.detach().reshape(-1).requires_grad_(True), p.reshape(-1), False, True)),
    ]
    for op, args in samples:
        torch.library.opcheck(op, args)


def test_array_backends_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import numpy as np, sys\n"
        "import symxent.functional as F\n"
        "x = np.random.default_rng(0).normal(size=(4, 3)); t = np.array([0, 1, 2, -100])\n"
        "for b in ('numpy', 'c'):\n"
        "    F.cross_entropy(x, t, backend=b, return_grad=True)\n"
        "    F.softmax(x, 1, backend=b)\n"
        "    F.binary_cross_entropy_with_logits(x, np.ones_like(x), backend=b)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
