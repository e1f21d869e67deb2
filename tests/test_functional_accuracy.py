"""Accuracy on adversarial inputs, against mpmath at 60 significant digits.

For every backend and float32/float64: the output and the input gradient are finite wherever the exact
value is finite, and the error is no larger than torch's on the same inputs (up to a few units in the last
place: ``ours <= torch + 4 eps``, errors measured relative to the exact value, the worst element of an array).
The exact values are computed from the very same (rounded) inputs, so only the computation is measured.
"""
import functools
import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf

mpmath.mp.dps = 60
BACKENDS = ["numpy", "c", "torch"]
DTYPES = [torch.float32, torch.float64]


# --- exact references (mpmath) ---------------------------------------------------------------------

def _mp(values):
    return [mpmath.mpf(float(v)) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def exact_logsumexp(row):
    top = max(row)
    return top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in row))


def exact_cross_entropy_rows(z, target, columns=None):
    """Per-row ``logsumexp(z) - z[c]`` and the gradient ``softmax - onehot`` (on ``columns`` only)."""
    losses, grads = [], []
    for row, c in zip(z, target):
        values = _mp(row)
        lse = exact_logsumexp(values)
        losses.append(lse - values[c])
        cols = range(len(values)) if columns is None else columns
        grads.append([mpmath.exp(values[k] - lse) - (1 if k == c else 0) for k in cols])
    return losses, grads


# --- error measure ---------------------------------------------------------------------------------------

def rel_error(values, exact):
    """Worst relative error over an array (an exact 0 is compared absolutely)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    worst = 0.0
    for v, e in zip(values, exact):
        if not math.isfinite(v):
            return math.inf
        scale = abs(e) if e != 0 else mpmath.mpf(1)
        worst = max(worst, float(abs(mpmath.mpf(float(v)) - e) / scale))
    return worst


def assert_no_worse_than_torch(ours, theirs, exact, dtype, what):
    eps = torch.finfo(dtype).eps
    assert np.all(np.isfinite(np.asarray(ours, dtype=np.float64))), f"{what}: non-finite where exact is finite"
    ours_err, torch_err = rel_error(ours, exact), rel_error(theirs, exact)
    assert ours_err <= torch_err + 4 * eps, f"{what}: error {ours_err:.3g} > torch's {torch_err:.3g}"


def run_ours(name, backend, x, args=(), kwargs=None, grad_output=None):
    """(output, input gradient) as float64 NumPy arrays."""
    kwargs = kwargs or {}
    fn = getattr(sxf, name)
    if backend == "torch":
        x = x.detach().clone().requires_grad_(True)
        out = fn(x, *args, backend="torch", **kwargs)
        out.backward(torch.ones_like(out) if grad_output is None else grad_output)
        return out.detach().double().numpy(), x.grad.double().numpy()
    np_args = [a.numpy() if isinstance(a, torch.Tensor) else a for a in args]
    extra = {} if grad_output is None else dict(grad_output=grad_output.numpy())
    out, grad = fn(x.numpy(), *np_args, backend=backend, return_grad=True, **kwargs, **extra)
    return np.asarray(out, dtype=np.float64), np.asarray(grad, dtype=np.float64)


def run_torch(name, x, args=(), kwargs=None, grad_output=None):
    x = x.detach().clone().requires_grad_(True)
    out = getattr(F, name)(x, *args, **(kwargs or {}))
    out.backward(torch.ones_like(out) if grad_output is None else grad_output)
    return out.detach().double().numpy(), x.grad.double().numpy()


# --- cross_entropy -------------------------------------------------------------------------------------------

def _huge_logits():
    """Logits up to +-1e4: the loss of a low class is ~2e4, of the top class ~0."""
    rows = [
        [1e4, -1e4, 0.0, 5e3, -5e3, 9999.5],
        [-1e4, -1e4, -1e4, -1e4, -1e4, -1e4 + 1],
        [1e4, 1e4, 1e4 - 1e-3, -1e4, 0.0, 1.0],
        [3.0, -1e4, 2.0, 1e4, 1e4 - 30, 7.0],
    ]
    return torch.tensor(rows, dtype=torch.float64), torch.tensor([1, 5, 2, 4])


def _dominant_class(classes=1000, margin=40.0):
    """One class ahead by ``margin``: its loss ~(C-1) e^-margin is tiny but representable."""
    z = torch.zeros(3, classes, dtype=torch.float64)
    z[0, 0] = margin
    z[1, 7] = margin / 2
    z[2, 3] = margin
    return z, torch.tensor([0, 7, 5])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inputs", [_huge_logits, _dominant_class], ids=["logits_1e4", "dominant_class"])
def test_cross_entropy_adversarial_rows(inputs, backend, dtype):
    z, t = inputs()
    z = z.to(dtype)
    exact_loss, exact_grad = exact_cross_entropy_rows(z.double().numpy(), t.numpy())
    g = torch.linspace(0.5, 2.0, len(t), dtype=dtype)  # per-row upstream gradient
    exact_grad = [gi * mpmath.mpf(float(gr)) for row, gr in zip(exact_grad, g) for gi in row]
    kwargs = dict(reduction="none")
    ours = run_ours("cross_entropy", backend, z, (t,), kwargs, grad_output=g)
    theirs = run_torch("cross_entropy", z, (t,), kwargs, grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact_loss, dtype, "loss")
    assert_no_worse_than_torch(ours[1], theirs[1], exact_grad, dtype, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_mean_of_huge_logits(backend, dtype):
    z, t = _huge_logits()
    z = z.to(dtype)
    exact_loss, exact_grad = exact_cross_entropy_rows(z.double().numpy(), t.numpy())
    exact_mean = [mpmath.fsum(exact_loss) / len(t)]
    exact_grad = [gi / len(t) for row in exact_grad for gi in row]
    ours, theirs = run_ours("cross_entropy", backend, z, (t,)), run_torch("cross_entropy", z, (t,))
    assert_no_worse_than_torch(ours[0], theirs[0], exact_mean, dtype, "mean loss")
    assert_no_worse_than_torch(ours[1], theirs[1], exact_grad, dtype, "gradient")


MANY_CLASSES = 2**17
MANY_CLASSES_COLUMNS = [0, 77, 12345, 99999, MANY_CLASSES - 1]


@functools.lru_cache(maxsize=None)
def _many_classes():
    """Two float32 rows of 2^17 logits (the second with a dominant class) and their exact values."""
    gen = torch.Generator().manual_seed(0)
    z = (torch.randn(2, MANY_CLASSES, generator=gen) * 4).to(torch.float32)
    z[1, 12345] = 60.0
    t = torch.tensor([77, 12345])
    return z, t, exact_cross_entropy_rows(z.double().numpy(), t.numpy(), columns=MANY_CLASSES_COLUMNS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_two_to_the_17_classes(backend):
    """2^17 classes, float32: the sum over classes must not lose what torch keeps."""
    z, t, (exact_loss, exact_grad) = _many_classes()
    columns = MANY_CLASSES_COLUMNS
    ours = run_ours("cross_entropy", backend, z, (t,), dict(reduction="sum"))
    theirs = run_torch("cross_entropy", z, (t,), dict(reduction="sum"))
    assert_no_worse_than_torch(ours[0], theirs[0], [mpmath.fsum(exact_loss)], torch.float32, "loss")
    assert_no_worse_than_torch(ours[1][:, columns], theirs[1][:, columns], [v for row in exact_grad for v in row],
                               torch.float32, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_label_smoothing_with_huge_logits(backend, dtype):
    """eps/C * sum_i -w_i log s_i with logits at +-1e4 (sum of large terms of both signs)."""
    z, t = _huge_logits()
    z = z.to(dtype)
    eps, w = 0.1, [0.5, 1.0, 2.0, 1.5, 0.25, 1.0]
    exact = []
    for row, c in zip(z.double().numpy(), t.numpy()):
        values = _mp(row)
        lse = exact_logsumexp(values)
        nll = [lse - v for v in values]
        exact.append((1 - mpmath.mpf(eps)) * w[c] * nll[c]
                     + mpmath.mpf(eps) / len(values) * mpmath.fsum(wi * li for wi, li in zip(w, nll)))
    kwargs = dict(reduction="none", label_smoothing=eps, weight=torch.tensor(w, dtype=dtype))
    g = torch.ones(len(t), dtype=dtype)
    ours = run_ours("cross_entropy", backend, z, (t,), kwargs, grad_output=g)
    theirs = run_torch("cross_entropy", z, (t,), kwargs, grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact, dtype, "loss")
    assert np.all(np.isfinite(ours[1]))


# --- softmax / log_softmax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_log_softmax_and_softmax_of_huge_logits(backend, dtype):
    z, _ = _huge_logits()
    z = z.to(dtype)
    exact_logp, exact_p = [], []
    for row in z.double().numpy():
        values = _mp(row)
        lse = exact_logsumexp(values)
        exact_logp += [v - lse for v in values]
        exact_p += [mpmath.exp(v - lse) for v in values]
    g = torch.linspace(-1, 1, z.numel(), dtype=dtype).reshape(z.shape)
    ours = run_ours("log_softmax", backend, z, (1,), grad_output=g)
    theirs = run_torch("log_softmax", z, (1,), grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact_logp, dtype, "log_softmax")
    assert np.all(np.isfinite(ours[1]))
    ours = run_ours("softmax", backend, z, (1,), grad_output=g)
    theirs = run_torch("softmax", z, (1,), grad_output=g)
    # softmax values below the smallest normal number are compared absolutely
    floor = torch.finfo(dtype).tiny
    exact_p_floored = [p if p > floor else mpmath.mpf(0) for p in exact_p]
    assert_no_worse_than_torch(np.where(np.abs(ours[0]) > floor, ours[0], 0),
                               np.where(np.abs(theirs[0]) > floor, theirs[0], 0), exact_p_floored, dtype, "softmax")
    assert np.all(np.isfinite(ours[1]))


# --- binary cross-entropy --------------------------------------------------------------------------------------

def exact_bce(p, t):
    """-(t max(log p, -100) + (1 - t) max(log(1 - p), -100)), with log 0 = -inf clamped."""
    out = []
    for pi, ti in zip(_mp(p), _mp(t)):
        log_p = mpmath.log(pi) if pi > 0 else -mpmath.inf
        log_q = mpmath.log(1 - pi) if pi < 1 else -mpmath.inf
        out.append(-(ti * max(log_p, -100) + (1 - ti) * max(log_q, -100)))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_cross_entropy_at_exact_zero_and_one(backend, dtype):
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.5, 1e-30, 1 - 2**-24, 2**-24], dtype=dtype)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3, 0.7, 1.0, 0.0, 1.0, 1.0], dtype=dtype)
    exact = exact_bce(p.double().numpy(), t.double().numpy())
    kwargs = dict(reduction="none")
    g = torch.ones(len(p), dtype=dtype)
    ours = run_ours("binary_cross_entropy", backend, p, (t,), kwargs, grad_output=g)
    theirs = run_torch("binary_cross_entropy", p, (t,), kwargs, grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact, dtype, "loss")
    # the loss is finite everywhere (logs clamped at -100), so must the gradient be
    assert np.all(np.isfinite(ours[1])), ours[1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_cross_entropy_gradient_near_the_ends(backend, dtype):
    p = torch.tensor([1e-30, 1e-6, 0.5, 1 - 2**-20, 1 - 2**-24], dtype=dtype)
    t = torch.tensor([1.0, 0.25, 1.0, 0.0, 0.0], dtype=dtype)
    exact = [(pi - ti) / (pi * (1 - pi)) for pi, ti in zip(_mp(p.double().numpy()), _mp(t.double().numpy()))]
    kwargs = dict(reduction="sum")
    ours = run_ours("binary_cross_entropy", backend, p, (t,), kwargs)
    theirs = run_torch("binary_cross_entropy", p, (t,), kwargs)
    assert_no_worse_than_torch(ours[1], theirs[1], exact, dtype, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_cross_entropy_with_logits_huge(backend, dtype):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 30.0, -30.0, 0.0, 100.0], dtype=dtype)
    t = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.5, 0.9], dtype=dtype)
    pw = 3.0
    exact_loss, exact_grad = [], []
    for xi, ti in zip(_mp(x.double().numpy()), _mp(t.double().numpy())):
        log_sig = -mpmath.log1p(mpmath.exp(-xi)) if xi > 0 else xi - mpmath.log1p(mpmath.exp(xi))
        sig = 1 / (1 + mpmath.exp(-xi))
        exact_loss.append((1 - ti) * xi - (1 + (pw - 1) * ti) * log_sig)
        exact_grad.append((1 + (pw - 1) * ti) * sig - pw * ti)
    kwargs = dict(reduction="none", pos_weight=torch.tensor(pw, dtype=dtype))
    g = torch.ones(len(x), dtype=dtype)
    ours = run_ours("binary_cross_entropy_with_logits", backend, x, (t,), kwargs, grad_output=g)
    theirs = run_torch("binary_cross_entropy_with_logits", x, (t,), kwargs, grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact_loss, dtype, "loss")
    assert_no_worse_than_torch(ours[1], theirs[1], exact_grad, dtype, "gradient")


# --- kl_div ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_kl_div_zero_targets_and_extreme_log_probabilities(backend, dtype):
    x = torch.tensor([-1e4, -50.0, -1e-7, 0.0, -3.0, -1e4], dtype=dtype)
    t = torch.tensor([0.0, 1e-30, 0.999, 1.0, 0.0, 1e-20], dtype=dtype)
    exact = [ti * (mpmath.log(ti) - xi) if ti > 0 else mpmath.mpf(0)
             for xi, ti in zip(_mp(x.double().numpy()), _mp(t.double().numpy()))]
    g = torch.ones(len(x), dtype=dtype)
    ours = run_ours("kl_div", backend, x, (t,), dict(reduction="none"), grad_output=g)
    theirs = run_torch("kl_div", x, (t,), dict(reduction="none"), grad_output=g)
    assert_no_worse_than_torch(ours[0], theirs[0], exact, dtype, "loss")
    assert_no_worse_than_torch(ours[1], theirs[1], [-ti for ti in _mp(t.double().numpy())], dtype, "gradient")
