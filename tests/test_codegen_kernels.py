"""The checked-in generated kernels (numpy, torch, c) agree with torch.nn.functional, at float32 and
float64, at ordinary and extreme logits, and keep the kernel contract (shapes, dtypes, want_grad)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from symxent.codegen import LOSSES, load_kernel  # noqa: E402
from symxent.codegen.conformance import check_backend  # noqa: E402

BACKENDS = ["numpy", "torch", "c"]
TOL = {np.float64: 1e-10, np.float32: 2e-5}


def call(kernel, backend, *args):
    if backend == "torch":
        args = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
    out = kernel(*args)
    if isinstance(out, tuple):
        return tuple(None if o is None else np.asarray(o) for o in out)
    return np.asarray(out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_generated_kernel_matches_torch(name, backend):
    """Loss and gradient of every kernel match torch (its own reference table, float32 and float64)."""
    ok, detail = check_backend(name, backend, seed=3)
    assert ok, detail


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("logits", [[-1e4, 0.0, 1e4, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4 - 3.0, -1e4 + 0.5]],
                         ids=["overflow", "underflow"])
def test_cross_entropy_at_extreme_logits_matches_torch(logits, backend, dtype):
    """CE with label smoothing at logits +-1e4: finite, and equal to F.cross_entropy and its grad."""
    z = np.array([logits, logits[::-1]], dtype=dtype)
    target = np.array([2, 1])
    weight = np.array([1.0, 2.0, 0.5, 1.5], dtype=dtype)
    loss, grad = call(load_kernel("cross_entropy", backend), backend, z, target, weight, 0.2, True)
    x = torch.tensor(z, requires_grad=True)
    want = F.cross_entropy(x, torch.tensor(target), weight=torch.tensor(weight), reduction="none", label_smoothing=0.2)
    want.sum().backward()
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype] * 1e4)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_with_logits_is_finite_and_exact_at_plus_minus_1e4(backend):
    """softplus form: loss(1e4, t=0) = 1e4, loss(-1e4, t=0) = 0, gradients sigmoid(x) - t."""
    x = np.array([1e4, -1e4, 1e4, -1e4])
    t = np.array([0.0, 0.0, 1.0, 1.0])
    ones = np.ones(4)
    loss, grad = call(load_kernel("bce_with_logits", backend), backend, x, t, ones, ones, True)
    np.testing.assert_array_equal(loss, [1e4, 0.0, 0.0, 1e4])
    np.testing.assert_array_equal(grad, [1.0, 0.0, 0.0, -1.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_kernels_keep_dtype_and_skip_the_gradient_when_not_wanted(backend):
    """float32 in, float32 out; want_grad=False returns (loss, None)."""
    z = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    out = call(load_kernel("cross_entropy", backend), backend, z, np.array([0, 1, 3]), np.ones(4, np.float32), 0.0,
               False)
    assert out[1] is None and out[0].dtype == np.float32 and out[0].shape == (3,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_and_c_kernels_do_not_modify_their_inputs(backend):
    """Inputs are read-only to a kernel (in-place work happens on fresh arrays only)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=7)
    t = rng.uniform(size=7)
    before = (x.copy(), t.copy())
    call(load_kernel("kl_div", backend), backend, x, t, False, True)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(t, before[1])
