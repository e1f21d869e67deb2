"""``backend="cuda"`` of symxent.functional: the functional layer around the generated CUDA kernels.

Without a GPU (CPU-runnable): the clear error saying why the kernels cannot run, the options and
argument checks (torch's messages, before any kernel), and the layout logic, by replacing the CUDA
autograd functions of :mod:`symxent.runtime.cuda_autograd` with a stand-in that keeps their contract
(rows ``(R, C)``, targets ``(R,)`` / ``(R, C)``, elementwise operands whole / per last dimension / one
value) and computes with ``torch.nn.functional`` on the CPU. The expectations are torch itself on the
original (unbatched, K-dimensional, broadcast) inputs, in float64.

With a GPU (``gpu``, skipped otherwise): every function and option against torch on CUDA tensors,
loss and input gradient, including the z-loss, ``return_lse`` and ``inplace_backward``.
Run on a GPU machine:  python -m pytest tests/test_functional_cuda_backend.py -m gpu -q
"""
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf
from symxent.runtime import cuda_autograd as cx
from symxent.runtime.cuda import unavailable_reason
from test_functional_errors import CASES as ERROR_CASES

REASON = unavailable_reason()
no_gpu = pytest.mark.skipif(REASON is None, reason="a usable CUDA GPU is present")


def gpu(test):
    """Marked ``gpu`` and skipped (saying why) without a usable CUDA GPU."""
    test = pytest.mark.skipif(REASON is not None, reason=f"needs a CUDA GPU for the generated kernels: {REASON}")(test)
    return pytest.mark.gpu(test)


#: error cases of test_functional_errors whose check is data-dependent: done by the CUDA kernel itself
KERNEL_CHECKED = {"ce_target_above_range", "ce_target_negative", "ce_target_out_of_range_with_ignore",
                  "ce_target_out_of_range_kdim", "ce_target_out_of_range_none", "ce_target_out_of_range_smoothing",
                  "ce_target_is_other_ignore_value", "nll_target_above_range", "nll_target_negative_unbatched"}
RTOL = {torch.float32: 2e-5, torch.bfloat16: 1.6e-2}
ATOL_FRACTION = {torch.float32: 1e-6, torch.bfloat16: 8e-3}


# --- inputs (CPU float32; moved and cast per test) ------------------------------------------------------

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def X(*shape, seed=0):
    return torch.randn(shape, generator=_gen(seed)) * 3


def P(*shape, seed=1):
    return torch.rand(shape, generator=_gen(seed)) * 0.98 + 0.01


def probs(*shape, dim, seed=2):
    return torch.softmax(X(*shape, seed=seed), dim)


def T(classes, *shape, seed=3, ignore=None):
    t = torch.randint(0, classes, shape, generator=_gen(seed))
    if ignore is not None:
        t.view(-1)[::3] = ignore
    return t


# id -> (function, builder of (args, kwargs)); every option of every function, with the layouts that
# the functional layer must undo: unbatched (C,), K-dimensional (N, C, d1..dK), broadcast operands
CASES = {
    "ce_2d": ("cross_entropy", lambda: ((X(5, 7), T(7, 5)), {})),
    "ce_weight_ignore_smoothing": ("cross_entropy", lambda: ((X(6, 7), T(7, 6, ignore=-100)),
                                                             dict(weight=P(7) + 0.5, label_smoothing=0.1))),
    "ce_unbatched": ("cross_entropy", lambda: ((X(7), torch.tensor(3)), {})),
    "ce_kdim_ignore_in_range": ("cross_entropy", lambda: ((X(2, 7, 3, 4), T(7, 2, 3, 4, ignore=1)),
                                                          dict(ignore_index=1, label_smoothing=0.05))),
    "ce_byte_target": ("cross_entropy", lambda: ((X(5, 7), T(7, 5).to(torch.uint8)), {})),
    "ce_prob_kdim": ("cross_entropy", lambda: ((X(2, 7, 3), probs(2, 7, 3, dim=1)),
                                               dict(weight=P(7) + 0.5, label_smoothing=0.2))),
    "ce_prob_unbatched": ("cross_entropy", lambda: ((X(7), probs(7, dim=0)), {})),
    "nll_kdim": ("nll_loss", lambda: ((torch.log_softmax(X(2, 7, 3), 1), T(7, 2, 3, ignore=-100)),
                                      dict(weight=P(7)))),
    "nll_unbatched": ("nll_loss", lambda: ((torch.log_softmax(X(7), 0), torch.tensor(2)), {})),
    "bce_weight_expanded": ("binary_cross_entropy", lambda: ((P(4, 5), P(4, 5, seed=4)), dict(weight=P(4, 1)))),
    "bce_weight_last_dim": ("binary_cross_entropy", lambda: ((P(4, 5), P(4, 5, seed=4)), dict(weight=P(5)))),
    "bce_0d": ("binary_cross_entropy", lambda: ((P(), P(seed=4)), dict(weight=P()))),
    "bcel_pos_weight": ("binary_cross_entropy_with_logits", lambda: ((X(4, 5), P(4, 5)),
                                                                     dict(pos_weight=P(5) * 3, weight=P(1, 5)))),
    "bcel_full_weight": ("binary_cross_entropy_with_logits", lambda: ((X(4, 5), P(4, 5)),
                                                                      dict(pos_weight=P(1), weight=P(4, 5)))),
    "bcel_kdim_weight_expanded": ("binary_cross_entropy_with_logits", lambda: ((X(2, 3, 4), P(2, 3, 4)),
                                                                               dict(weight=P(3, 1)))),
    "kl_broadcast_input": ("kl_div", lambda: ((torch.log_softmax(X(5), 0), probs(3, 5, dim=1)), {})),
    "kl_log_target": ("kl_div", lambda: ((torch.log_softmax(X(3, 5), 1), torch.log_softmax(X(3, 5, seed=6), 1)),
                                         dict(log_target=True))),
}
MAPS = {
    "softmax_dim0": ("softmax", lambda: ((X(3, 4, 5), 0), {})),
    "softmax_last": ("softmax", lambda: ((X(3, 4), -1), {})),
    "log_softmax_dim1": ("log_softmax", lambda: ((X(3, 4, 5), 1), {})),
    "log_softmax_0d": ("log_softmax", lambda: ((X(), 0), {})),
    "softmax_unbatched": ("softmax", lambda: ((X(6), 0), {})),
}


def _reductions(name):
    return ["none", "mean", "sum", "batchmean"] if name == "kl_div" else ["none", "mean", "sum"]


LOSS_PARAMS = [(case, reduction) for case, (name, _) in CASES.items() for reduction in _reductions(name)]


def _to(value, device, dtype):
    """Tensors moved to ``device``; floating ones cast to ``dtype`` (index targets stay as they are)."""
    if isinstance(value, dict):
        return {k: _to(v, device, dtype) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device, dtype) for v in value)
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
    return value


def assert_close(actual, expected, dtype):
    """``actual`` (in ``dtype``) against a float64 reference, allowing ``dtype``'s arithmetic and one rounding."""
    expected = expected.detach().to(torch.float64)
    atol = ATOL_FRACTION[dtype] * max(float(expected.abs().max()), 1e-30) if expected.numel() else 0.0
    actual = actual.detach().to(expected.device, torch.float64)
    torch.testing.assert_close(actual, expected, rtol=RTOL[dtype], atol=atol)


def check_against_torch(name, args, kwargs, device, dtype=torch.float32, **cuda_only):
    """symxent.functional.<name>(backend="cuda", **cuda_only) on ``device`` against torch.nn.functional.<name>
    on the CPU in float64, from the same (rounded) values: output, and input gradient for a non-uniform
    upstream gradient."""
    args, kwargs = _to(args, device, dtype), _to(kwargs, device, dtype)
    x = args[0].detach().clone().requires_grad_()
    out = getattr(sxf, name)(x, *args[1:], backend="cuda", **kwargs, **cuda_only)
    x64 = args[0].detach().to("cpu", torch.float64).requires_grad_()
    ref = getattr(F, name)(x64, *_to(args[1:], "cpu", torch.float64), **_to(kwargs, "cpu", torch.float64))
    assert out.shape == ref.shape and out.dtype == dtype and out.device == args[0].device
    go = torch.linspace(-1.5, 2.0, max(ref.numel(), 1), dtype=torch.float64)[:ref.numel()].reshape(ref.shape)
    go = (go if ref.dim() else torch.tensor(1.7, dtype=torch.float64)).to(dtype)
    out.backward(go.to(device))
    ref.backward(go.double())
    assert_close(out, ref, dtype)
    assert_close(x.grad, x64.grad, dtype)
    return out


# --- (a) without a GPU: the stand-in for the CUDA autograd functions ------------------------------------

def _weight_like(value, x):
    """The elementwise kernels' contract for an operand: None, one value, x's shape, or (x.shape[-1],)."""
    if value is None:
        return None
    last = x.shape[-1] if x.dim() else 1
    assert value.numel() == 1 or tuple(value.shape) == tuple(x.shape) or (value.dim() == 1 and value.numel() == last)
    return value.reshape(()) if value.numel() == 1 else value


class StandIn:
    """The autograd functions of symxent.runtime.cuda_autograd, on the CPU with torch.nn.functional: checks
    the calls keep their contract and records them (``calls``: name, tensors, options)."""

    def __init__(self):
        self.calls = []

    def _record(self, name, *tensors, **options):
        self.calls.append(SimpleNamespace(name=name, tensors=tensors, options=options))

    def _rows(self, input, target, weight):
        assert input.dim() == 2 and input.is_contiguous()
        rows, classes = input.shape
        assert tuple(target.shape) in ((rows,), (rows, classes))
        assert weight is None or tuple(weight.shape) == (classes,)

    def cross_entropy(self, input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                      lse_square_scale=0.0, return_lse=False, inplace_backward=False):
        self._rows(input, target, weight)
        self._record("cross_entropy", input, target, weight, ignore_index=ignore_index, reduction=reduction,
                     label_smoothing=label_smoothing, lse_square_scale=lse_square_scale, return_lse=return_lse,
                     inplace_backward=inplace_backward)
        loss = F.cross_entropy(input, target.long() if not target.is_floating_point() else target, weight,
                               ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
        return (loss, torch.logsumexp(input.detach().float(), 1)) if return_lse else loss

    def nll_loss(self, input, target, weight=None, *, ignore_index=-100, reduction="mean"):
        self._rows(input, target, weight)
        self._record("nll_loss", input, target, weight, ignore_index=ignore_index, reduction=reduction)
        return F.nll_loss(input, target.long(), weight, ignore_index=ignore_index, reduction=reduction)

    def softmax(self, input):
        assert input.dim() == 2
        self._record("softmax", input)
        return torch.softmax(input, 1)

    def log_softmax(self, input):
        assert input.dim() == 2
        self._record("log_softmax", input)
        return torch.log_softmax(input, 1)

    def binary_cross_entropy_with_logits(self, input, target, weight=None, pos_weight=None, *, reduction="mean"):
        assert input.is_contiguous()
        self._record("binary_cross_entropy_with_logits", input, target, weight, pos_weight, reduction=reduction)
        return F.binary_cross_entropy_with_logits(input, _weight_like(target, input), _weight_like(weight, input),
                                                  reduction=reduction, pos_weight=_weight_like(pos_weight, input))

    def binary_cross_entropy(self, input, target, weight=None, *, reduction="mean"):
        assert input.is_contiguous()
        self._record("binary_cross_entropy", input, target, weight, reduction=reduction)
        return F.binary_cross_entropy(input, _weight_like(target, input), _weight_like(weight, input),
                                      reduction=reduction)

    def kl_div(self, input, target, *, reduction="mean", log_target=False):
        assert input.is_contiguous() and reduction != "batchmean"  # batchmean of the *given* input: sum / N
        self._record("kl_div", input, target, reduction=reduction, log_target=log_target)
        return F.kl_div(input, _weight_like(target, input), reduction=reduction, log_target=log_target)


@pytest.fixture
def stand_in(monkeypatch):
    standin = StandIn()
    for name in ("cross_entropy", "nll_loss", "softmax", "log_softmax", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits", "kl_div"):
        monkeypatch.setattr(cx, name, getattr(standin, name))
    return standin


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case,reduction", LOSS_PARAMS)
def test_layouts_and_reductions_match_torch(stand_in, case, reduction):
    name, build = CASES[case]
    args, kwargs = build()
    check_against_torch(name, args, dict(kwargs, reduction=reduction), "cpu")
    assert [call.name for call in stand_in.calls] == [name]


@pytest.mark.parametrize("case", sorted(MAPS))
def test_softmax_layouts_match_torch(stand_in, case):
    name, build = MAPS[case]
    args, kwargs = build()
    check_against_torch(name, args, kwargs, "cpu")
    (call,) = stand_in.calls
    x, dim = args
    assert call.tensors[0].shape == ((x.numel() // x.shape[dim], x.shape[dim]) if x.dim() else (1, 1))


def test_rows_targets_and_options_reach_the_kernel(stand_in):
    x, t, w = X(2, 7, 3, 4), T(7, 2, 3, 4, ignore=5), P(7)
    sxf.cross_entropy(x, t, w, ignore_index=5, reduction="sum", label_smoothing=0.3, backend="cuda",
                      lse_square_scale=1e-3, return_lse=True, inplace_backward=True)
    (call,) = stand_in.calls
    rows, target, weight = call.tensors
    assert torch.equal(rows, x.permute(0, 2, 3, 1).reshape(24, 7))
    assert torch.equal(target, t.reshape(24)) and weight is w
    assert call.options == dict(ignore_index=5, reduction="sum", label_smoothing=0.3, lse_square_scale=1e-3,
                                return_lse=True, inplace_backward=True)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_unbatched_input_with_a_target_of_size_one(stand_in, reduction):
    """(C,) logits with a (1,) target: one row (forward only: torch's own backward fails for it)."""
    x, t, w = X(7), torch.tensor([4]), P(7)
    out = sxf.cross_entropy(x, t, w, reduction=reduction, backend="cuda")
    assert stand_in.calls[0].tensors[0].shape == (1, 7) and stand_in.calls[0].tensors[1].shape == (1,)
    torch.testing.assert_close(out, F.cross_entropy(x, t, w, reduction=reduction))


def test_return_lse_has_the_shape_of_reduction_none(stand_in):
    x = X(2, 7, 3)
    loss, lse = sxf.cross_entropy(x, T(7, 2, 3), backend="cuda", return_lse=True)
    assert loss.shape == () and lse.shape == (2, 3) and lse.dtype == torch.float32
    torch.testing.assert_close(lse.double(), torch.logsumexp(x.double(), 1))
    loss, lse = sxf.cross_entropy(X(7), torch.tensor(1), backend="cuda", return_lse=True, reduction="none")
    assert loss.shape == () and lse.shape == ()
    torch.testing.assert_close(lse.double(), torch.logsumexp(X(7).double(), 0))


@pytest.mark.parametrize("shape", [(5, 7), (7,)], ids=["2d", "unbatched"])
def test_inplace_backward_gets_the_logits_own_buffer(stand_in, shape):
    """(N, C) and (C,) logits reach the kernel as views of the caller's buffer (no copy to write into)."""
    x = X(*shape).requires_grad_()
    t = T(7, 5) if len(shape) == 2 else torch.tensor(3)
    sxf.cross_entropy(x, t, backend="cuda", inplace_backward=True)
    assert stand_in.calls[0].tensors[0].data_ptr() == x.data_ptr()


def test_no_gradient_wanted_means_no_gradient_computed(stand_in):
    """Under no_grad (or for inputs that do not require grad) the kernels get a detached input: no
    gradient is computed, and inplace_backward cannot overwrite the logits."""
    x = X(5, 7).requires_grad_()
    with torch.no_grad():
        sxf.cross_entropy(x, T(7, 5), backend="cuda", inplace_backward=True)
        sxf.binary_cross_entropy_with_logits(x, P(5, 7), backend="cuda")
    sxf.cross_entropy(x.detach(), T(7, 5), backend="cuda", inplace_backward=True)
    assert [call.tensors[0].requires_grad for call in stand_in.calls] == [False, False, False]
    sxf.cross_entropy(x, T(7, 5), backend="cuda")
    assert stand_in.calls[-1].tensors[0].requires_grad


def test_elementwise_operands_are_passed_in_the_smallest_form_the_kernels_broadcast(stand_in):
    """Per last dimension as (C,), one value as it is, the input's shape as it is; only other broadcasts expand."""
    x, t = X(4, 5), P(4, 5)
    sxf.binary_cross_entropy_with_logits(x, t, weight=P(1, 5), pos_weight=P(1, 1), backend="cuda")
    sxf.binary_cross_entropy(P(4, 5), t, weight=P(4, 1), backend="cuda")
    sxf.kl_div(torch.log_softmax(X(5), 0), probs(3, 5, dim=1), reduction="sum", backend="cuda")
    shapes = [[tuple(v.shape) for v in call.tensors] for call in stand_in.calls]
    assert shapes == [[(4, 5), (4, 5), (5,), (1, 1)], [(4, 5), (4, 5), (4, 5)], [(3, 5), (3, 5)]]
    assert stand_in.calls[1].tensors[2].stride() == (1, 0)  # an expanded view, not a copy


def test_probability_targets_are_promoted_like_torch(stand_in):
    x, y = X(4, 6), probs(4, 6, dim=1).double()
    out = sxf.cross_entropy(x, y, backend="cuda")
    (call,) = stand_in.calls
    assert call.tensors[0].dtype == call.tensors[1].dtype == torch.float64 == out.dtype
    torch.testing.assert_close(out, F.cross_entropy(x, y))


# --- (a) without a GPU: errors -----------------------------------------------------------------------------

@no_gpu
@pytest.mark.parametrize("name,args,kwargs", [
    ("cross_entropy", (X(4, 3), T(3, 4)), {}),
    ("cross_entropy", (X(4, 3), probs(4, 3, dim=1)), {}),
    ("nll_loss", (X(4, 3), T(3, 4)), {}),
    ("softmax", (X(4, 3), 1), {}),
    ("log_softmax", (X(4, 3), 1), {}),
    ("binary_cross_entropy", (P(4, 3), P(4, 3)), {}),
    ("binary_cross_entropy_with_logits", (X(4, 3), P(4, 3)), {}),
    ("kl_div", (X(4, 3), P(4, 3)), dict(reduction="batchmean")),
], ids=["ce_index", "ce_probability", "nll", "softmax", "log_softmax", "bce", "bce_with_logits", "kl_div"])
def test_without_a_gpu_the_error_says_why(name, args, kwargs):
    """The unavailability reason of symxent.runtime.cuda.unavailable_reason(), as a RuntimeError."""
    with pytest.raises(RuntimeError, match=f"^symxent CUDA kernels are unavailable: {re.escape(REASON)}$"):
        getattr(sxf, name)(*args, backend="cuda", **kwargs)


@pytest.mark.parametrize("case", sorted(set(ERROR_CASES) - KERNEL_CHECKED))
def test_argument_checks_come_first_with_torchs_error(case):
    """Shapes, dtypes, weights, reductions, [0, 1] ranges...: torch's exception before any kernel (so also
    without a GPU); the data-dependent target range is checked by the kernel (see the GPU tests)."""
    name, build = ERROR_CASES[case]
    args, kwargs = build()
    try:
        getattr(F, name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the expectation is whatever torch raises
        expected = exc
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        getattr(sxf, name)(*args, backend="cuda", **kwargs)


@no_gpu
@pytest.mark.parametrize("case", sorted(KERNEL_CHECKED))
def test_kernel_checked_targets_without_a_gpu_say_why(case):
    name, build = ERROR_CASES[case]
    args, kwargs = build()
    with pytest.raises(RuntimeError, match="symxent CUDA kernels are unavailable"):
        getattr(sxf, name)(*args, backend="cuda", **kwargs)


@pytest.mark.parametrize("backend", ["numpy", "c", "torch"])
def test_the_cuda_only_option_names_the_backend(backend):
    """inplace_backward is the CUDA and Triton kernels' alone (z-loss and return_lse are on every backend now:
    tests/test_functional_z_loss.py)."""
    x, t = X(4, 3), T(3, 4)
    if backend != "torch":
        x, t = x.numpy(), t.numpy()
    message = (f"cross_entropy: inplace_backward=True needs backend='cuda' or 'triton', not backend='{backend}': "
               f"only the CUDA and Triton kernels write the gradient into the logits' buffer (the numpy and c backends "
               f"return it, the torch backend's autograd keeps the input)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sxf.cross_entropy(x, t, backend=backend, inplace_backward=True)


def test_default_options_are_accepted_everywhere():
    x, t = X(4, 3), T(3, 4)
    expected = F.cross_entropy(x, t)
    kwargs = dict(lse_square_scale=0.0, return_lse=False, inplace_backward=False)
    torch.testing.assert_close(sxf.cross_entropy(x, t, backend="torch", **kwargs), expected)
    np.testing.assert_allclose(sxf.cross_entropy(x.numpy(), t.numpy(), backend="c", **kwargs), expected.numpy(),
                               rtol=1e-6)


def test_cuda_backend_takes_tensors_and_uses_autograd():
    with pytest.raises(TypeError, match=r"^backend='cuda' takes torch tensors; use backend='numpy' or 'c'"):
        sxf.cross_entropy(np.zeros((2, 3), np.float32), np.zeros(2, np.int64), backend="cuda")
    with pytest.raises(ValueError, match=r"with backend='cuda' use autograd \(loss.backward\(\)\)"):
        sxf.softmax(X(2, 3), 1, backend="cuda", return_grad=True)


def test_refused_gradients_raise_torchs_error():
    x = X(4, 3).requires_grad_()
    with pytest.raises(RuntimeError, match="^The function 'nll_loss_forward' is not differentiable with respect to "
                                           "argument 'weight'"):
        sxf.cross_entropy(x, T(3, 4), weight=torch.ones(3, requires_grad=True), backend="cuda")
    with pytest.raises(RuntimeError, match="^The function 'binary_cross_entropy_with_logits' is not "
                                           "differentiable with respect to argument 'pos_weight'"):
        sxf.binary_cross_entropy_with_logits(x, P(4, 3), pos_weight=torch.ones(3, requires_grad=True),
                                             backend="cuda")


@pytest.mark.parametrize("name", ["cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                                  "kl_div"])
def test_a_target_that_requires_grad_runs_the_torch_backends_ops(stand_in, name):
    """The CUDA kernels differentiate the input only: with a differentiable target (and a probability target's
    weight) the call runs the torch backend's ops on the same tensors; loss and both gradients are torch's."""
    x = {"binary_cross_entropy": P(4, 3), "kl_div": torch.log_softmax(X(4, 3), 1)}.get(name, X(4, 3))
    target = probs(4, 3, dim=1)
    kwargs = dict(weight=torch.rand(3) + 0.5) if name == "cross_entropy" else {}
    grads = []
    for fn in (getattr(F, name), lambda *a, **k: getattr(sxf, name)(*a, backend="cuda", **k)):
        leaves = [x.detach().clone().requires_grad_(), target.detach().clone().requires_grad_()]
        weight = {k: v.detach().clone().requires_grad_() for k, v in kwargs.items()}
        loss = fn(*leaves, reduction="sum", **weight)
        grads.append([loss, *torch.autograd.grad(loss, leaves + list(weight.values()))])
    assert stand_in.calls == []  # no CUDA kernel
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, rtol=2e-5, atol=2e-6)


# --- (b) on a GPU: the generated kernels against torch ---------------------------------------------------

@gpu
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case,reduction", LOSS_PARAMS)
def test_gpu_losses_match_torch(case, reduction):
    name, build = CASES[case]
    args, kwargs = build()
    check_against_torch(name, args, dict(kwargs, reduction=reduction), "cuda")


@gpu
@pytest.mark.parametrize("case", sorted(MAPS))
def test_gpu_softmax_family_matches_torch(case):
    name, build = MAPS[case]
    args, kwargs = build()
    check_against_torch(name, args, kwargs, "cuda")


@gpu
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case", ["ce_kdim_ignore_in_range", "ce_prob_kdim", "nll_kdim", "bcel_pos_weight",
                                  "bce_weight_last_dim", "kl_log_target", "softmax_dim0"])
def test_gpu_bfloat16(case):
    name, build = {**CASES, **MAPS}[case]
    args, kwargs = build()
    check_against_torch(name, args, kwargs, "cuda", torch.bfloat16)


@gpu
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("ce_")])
def test_gpu_inplace_backward_gives_torchs_loss_and_gradient(case, reduction):
    """Every cross_entropy layout (2-D, unbatched, K-dimensional, probability targets) with the gradient
    written in place: the loss and the gradient are still torch's."""
    _, build = CASES[case]
    args, kwargs = build()
    check_against_torch("cross_entropy", args, dict(kwargs, reduction=reduction), "cuda", inplace_backward=True)


@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_gpu_inplace_backward_writes_the_gradient_into_the_logits(dtype):
    """The default leaves the logits intact; inplace_backward=True leaves the gradient in their buffer after
    the forward pass, and gives the same loss and gradient."""
    x0, t = X(64, 1003).to("cuda", dtype), T(1003, 64, ignore=-100).cuda()
    kept = x0.clone().requires_grad_()
    expected = sxf.cross_entropy(kept, t, backend="cuda", label_smoothing=0.1)
    expected.backward()
    assert torch.equal(kept.detach(), x0)
    x = x0.clone().requires_grad_()
    loss = sxf.cross_entropy(x, t, backend="cuda", label_smoothing=0.1, inplace_backward=True)
    assert torch.equal(x.detach(), kept.grad)
    loss.backward()
    assert torch.equal(loss, expected) and torch.equal(x.grad, kept.grad)
    x64 = x0.double().requires_grad_()
    reference = F.cross_entropy(x64, t, label_smoothing=0.1)
    reference.backward()
    assert_close(loss, reference, dtype)
    assert_close(x.grad, x64.grad, dtype)


@gpu
def test_gpu_inplace_backward_through_a_projection():
    """logits = h @ w overwritten by their gradient: h and w still get torch's gradients."""
    h0, w0, t = X(32, 48).cuda(), (X(48, 517, seed=5) / 7).cuda(), T(517, 32).cuda()
    h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
    sxf.cross_entropy(h @ w, t, backend="cuda", inplace_backward=True, reduction="sum").backward()
    h_ref, w_ref = h0.clone().requires_grad_(), w0.clone().requires_grad_()
    F.cross_entropy(h_ref @ w_ref, t, reduction="sum").backward()
    torch.testing.assert_close(h.grad, h_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(w.grad, w_ref.grad, rtol=1e-4, atol=1e-5)


@gpu
def test_gpu_no_grad_leaves_the_logits_alone():
    x = X(8, 300).cuda().requires_grad_()
    before, t = x.detach().clone(), T(300, 8).cuda()
    with torch.no_grad():
        loss = sxf.cross_entropy(x, t, backend="cuda", inplace_backward=True)
    assert torch.equal(x.detach(), before)
    assert_close(loss, F.cross_entropy(before.double(), t), torch.float32)


@gpu
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("probability", [False, True], ids=["index", "probability"])
def test_gpu_z_loss_and_lse_match_a_hand_reference(probability, reduction):
    """cross_entropy + lse_square_scale * logsumexp(z)^2 for each counted row, as Liger-Kernel defines it
    (unweighted; mean divides the cross-entropy by W = sum of the counted rows' weights and the z-loss by the
    number of counted rows; probability targets both by the number of rows), K-dim input."""
    zs, eps = 1e-2, 0.1
    x0, w = X(3, 11, 4).cuda(), (P(11) + 0.5).cuda()
    t = (probs(3, 11, 4, dim=1) if probability else T(11, 3, 4, ignore=-100)).cuda()
    x = x0.clone().requires_grad_()
    loss, lse = sxf.cross_entropy(x, t, w, reduction=reduction, label_smoothing=eps, backend="cuda",
                                  lse_square_scale=zs, return_lse=True)
    x64 = x0.double().requires_grad_()
    ce = F.cross_entropy(x64, t.double() if probability else t, w.double(), reduction="none", label_smoothing=eps)
    lse64 = torch.logsumexp(x64, 1)
    counted = torch.ones_like(lse64) if probability else (t != -100).double()
    rows = ce + zs * lse64 ** 2 * counted
    if reduction == "none":
        reference = rows
    elif reduction == "sum":
        reference = rows.sum()
    else:
        total = counted.sum() if probability else (w.double()[t.clamp(min=0)] * counted).sum()
        reference = ce.sum() / total + zs * (lse64 ** 2 * counted).sum() / counted.sum()
    go = torch.linspace(-1.0, 2.0, 12, device="cuda").reshape(3, 4) if reduction == "none" else torch.tensor(
        1.3, device="cuda")
    loss.backward(go)
    reference.backward(go.double())
    assert_close(loss, reference, torch.float32)
    assert_close(x.grad, x64.grad, torch.float32)
    assert lse.shape == (3, 4) and lse.dtype == torch.float32 and not lse.requires_grad
    assert_close(lse, lse64, torch.float32)


@gpu
@pytest.mark.parametrize("case", sorted(KERNEL_CHECKED))
def test_gpu_out_of_range_targets_raise_torchs_error(case):
    name, build = ERROR_CASES[case]
    args, kwargs = build()
    try:
        getattr(F, name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the expectation is whatever torch raises (on the CPU)
        expected = exc
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        getattr(sxf, name)(*_to(args, "cuda", torch.float32), backend="cuda", **_to(kwargs, "cuda", torch.float32))


@gpu
def test_gpu_double_and_cpu_tensors_are_refused_clearly():
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        sxf.cross_entropy(X(2, 5).double().cuda(), T(5, 2).cuda(), backend="cuda")
    with pytest.raises(TypeError, match="must be a CUDA tensor"):
        sxf.softmax(X(2, 5), 1, backend="cuda")
