"""The z-loss (``lse_square_scale``) and ``return_lse`` of cross_entropy on the numpy, c and torch backends,
against torch written as Liger-Kernel defines the z-loss:

    F.cross_entropy(x, t, weight, ...) + s * (lse[keep] ** 2).sum() / keep.sum()     (mean)

(per counted row ``s * lse**2``, not weighted by the class weight; ``sum`` sums it; ``none`` adds it per row,
0 on ignored rows; label smoothing leaves it unchanged). Probability targets: every row counts.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf

BACKENDS = ["numpy", "c", "torch"]
REDUCTIONS = ["none", "mean", "sum"]


def reference(x, t, weight, reduction, eps, scale, ignore_index=-100):
    """(loss, d loss / d x for upstream ``go``, lse) in float64 torch, Liger-Kernel's z-loss."""
    x64 = torch.as_tensor(x, dtype=torch.float64).clone().requires_grad_()
    w64 = None if weight is None else torch.as_tensor(weight, dtype=torch.float64)
    probability = torch.as_tensor(t).is_floating_point()
    target = torch.as_tensor(t, dtype=torch.float64) if probability else torch.as_tensor(t)
    ce = F.cross_entropy(x64, target, w64, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps)
    lse = torch.logsumexp(x64, 1)
    keep = torch.ones_like(lse, dtype=torch.bool) if probability else target != ignore_index
    squares = torch.where(keep, lse ** 2, 0)
    if reduction == "mean":
        z = scale * squares.sum() / keep.sum()
    elif reduction == "sum":
        z = scale * squares.sum()
    else:
        z = scale * squares
    loss = ce + z
    go = torch.linspace(-1, 2, loss.numel(), dtype=torch.float64).reshape(loss.shape) if loss.dim() else None
    loss.backward(go)
    return loss.detach(), x64.grad, lse.detach(), go


def run(backend, x, t, weight, reduction, eps, scale, go):
    """(loss, grad, lse) from symxent, in float64 NumPy."""
    kwargs = dict(reduction=reduction, label_smoothing=eps, lse_square_scale=scale, return_lse=True)
    if backend == "torch":
        xt = torch.as_tensor(x).clone().requires_grad_()
        w = None if weight is None else torch.as_tensor(weight)
        loss, lse = sxf.cross_entropy(xt, torch.as_tensor(t), w, backend="torch", **kwargs)
        loss.backward(None if go is None else go.to(loss.dtype))
        return loss.detach().double().numpy(), xt.grad.double().numpy(), lse.double().numpy()
    loss, lse, grad = sxf.cross_entropy(x, t, weight, backend=backend, return_grad=True,
                                        grad_output=None if go is None else go.numpy().astype(x.dtype), **kwargs)
    return np.asarray(loss, np.float64), np.asarray(grad, np.float64), np.asarray(lse, np.float64)


def _check(backend, x, t, weight, reduction, eps, scale, tol):
    want_loss, want_grad, want_lse, go = reference(x, t, weight, reduction, eps, scale)
    loss, grad, lse = run(backend, x, t, weight, reduction, eps, scale, go)
    np.testing.assert_allclose(loss, want_loss.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, want_grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lse, want_lse.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.2], ids=["plain", "smoothing"])
def test_index_targets_with_weights_ignore_index_and_smoothing(backend, reduction, weighted, eps):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 6)) * 4
    t = np.array([0, 5, -100, 2, 2, -100, 1, 4, 3])
    weight = rng.uniform(0.2, 3.0, 6) if weighted else None
    _check(backend, x, t, weight, reduction, eps, 1e-2, 1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_probability_targets(backend, reduction):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 7)) * 3
    y = rng.dirichlet(np.ones(7), size=5)
    _check(backend, x, y, rng.uniform(0.5, 2, 7), reduction, 0.1, 3e-2, 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_dimensional_input_and_float32(backend):
    """(N, C, d) logits in float32: the loss and lse in the reduction='none' shape, fp32 accuracy."""
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 5, 4)) * 5).astype(np.float32)
    t = rng.integers(0, 5, size=(3, 4))
    t[1, 2] = -100
    want_loss, want_grad, want_lse, go = reference(x, t, None, "none", 0.0, 1e-3)
    loss, grad, lse = run(backend, x, t, None, "none", 0.0, 1e-3, go)
    assert loss.shape == (3, 4) and lse.shape == (3, 4) and grad.shape == (3, 5, 4)
    np.testing.assert_allclose(loss, want_loss.numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(grad, want_grad.numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(lse, want_lse.numpy().reshape(3, 4), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_logits_keep_the_z_loss_finite_and_exact(backend):
    """Logits at +-1e4: lse ~ 1e4, lse^2 ~ 1e8; the z-loss is formed from the stable lse, no overflow."""
    x = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, -1e4, -1e4, -1e4 + 1]])
    t = np.array([1, 3])
    _check(backend, x, t, None, "mean", 0.0, 1e-4, 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_row_ignored_gives_nan_mean_and_zero_gradient(backend):
    """No counted row: torch's mean is NaN (0/0); the z-loss adds nothing; the gradient is 0."""
    x = np.random.default_rng(6).normal(size=(3, 4))
    t = np.full(3, -100)
    if backend == "torch":
        xt = torch.tensor(x, requires_grad=True)
        loss = sxf.cross_entropy(xt, torch.tensor(t), backend="torch", lse_square_scale=0.5)
        loss.backward()
        assert torch.isnan(loss) and torch.equal(xt.grad, torch.zeros_like(xt))
    else:
        loss, grad = sxf.cross_entropy(x, t, backend=backend, lse_square_scale=0.5, return_grad=True)
        assert np.isnan(loss) and not grad.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_return_lse_without_the_z_loss_is_the_row_logsumexp(backend):
    x = np.random.default_rng(7).normal(size=(4, 6)) * 10
    t = np.array([0, 1, 2, -100])
    if backend == "torch":
        loss, lse = sxf.cross_entropy(torch.tensor(x), torch.tensor(t), backend="torch", return_lse=True)
        loss, lse = loss.numpy(), lse.numpy()
    else:
        loss, lse = sxf.cross_entropy(x, t, backend=backend, return_lse=True)
    np.testing.assert_allclose(loss, F.cross_entropy(torch.tensor(x), torch.tensor(t)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(lse, torch.logsumexp(torch.tensor(x), 1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf")])
def test_a_negative_or_non_finite_scale_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="lse_square_scale must be a finite number >= 0"):
        sxf.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), lse_square_scale=bad)


def test_the_torch_backend_with_the_z_loss_traces_without_graph_breaks():
    x = torch.randn(6, 5, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3, 4, -100])

    def f(x, t):
        loss, lse = sxf.cross_entropy(x, t, backend="torch", lse_square_scale=1e-2, return_lse=True)
        return loss + 0 * lse.sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    loss = compiled(x, t)
    loss.backward()
    want_loss, want_grad, _, _ = reference(x.detach().double(), t, None, "mean", 0.0, 1e-2)
    torch.testing.assert_close(loss.detach().double(), want_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), want_grad, rtol=1e-5, atol=1e-6)


def test_an_option_not_given_is_at_its_neutral_value():
    """Every backend fills an option the caller left out with its neutral value (KERNEL_OPTIONS), never 0 by
    accident: the table's entries and the filled dict."""
    from symxent.semantics import KERNEL_OPTIONS, with_neutral_options
    assert with_neutral_options({}) == {name: option.neutral for name, option in KERNEL_OPTIONS.items()}
    assert with_neutral_options({"label_smoothing": 0.2})["label_smoothing"] == 0.2
    assert list(with_neutral_options({"lse_square_scale": 1e-3})) == list(KERNEL_OPTIONS)
