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
    loss, grad, _ = call(load_kernel("cross_entropy", backend), backend, z, target, weight, 0.2, 0.0, True)
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
    """float32 in, float32 out; want_grad=False returns (loss, None, lse)."""
    z = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    out = call(load_kernel("cross_entropy", backend), backend, z, np.array([0, 1, 3]), np.ones(4, np.float32), 0.0,
               0.0, False)
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


# --- accuracy where large terms could cancel (against mpmath, 50 digits) -----------------------------------

HUGE_ROWS = [[1e4, -1e4, 0.0, 5e3, -5e3, 9999.5], [1e4, 1e4 - 0.3, 1e4 - 1e-3, -1e4, 0.0, 1.0],
             [3.0, -1e4, 2.0, 1e4, 1e4 - 30, 7.0], [-1e4, -1e4, -1e4, -1e4, -1e4, -1e4 + 1]]
HUGE_WEIGHT = [0.5, 1.0, 2.0, 1.5, 0.25, 1.0]
#: worst relative error allowed, in units of the dtype's epsilon (torch's own error here is ~1 eps)
ULPS = 8


def exact_smoothed_loss(z, probabilities, eps):
    """-sum_i w_i ((1 - eps) y_i + eps/C) (z_i - logsumexp(z)) per row, with mpmath at 50 digits."""
    import mpmath
    with mpmath.workdps(50):
        out = []
        for row, y in zip(z, probabilities):
            values = [mpmath.mpf(float(v)) for v in row]
            top = max(values)
            lse = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in values))
            out.append(-mpmath.fsum(mpmath.mpf(w) * ((1 - mpmath.mpf(eps)) * mpmath.mpf(float(yi)) + mpmath.mpf(eps) / len(row))
                                    * (v - lse) for w, yi, v in zip(HUGE_WEIGHT, y, values)))
        return out


def worst_relative_error(got, exact):
    return max(float(abs(float(g) - e) / abs(e)) for g, e in zip(got, exact))


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_prob"])
def test_smoothed_cross_entropy_at_logits_1e4_is_accurate(name, backend, dtype, eps):
    """Label smoothing sums w_i (z_i - lse) over logits +-1e4: computed as sum w_i (z_i - m) - log(S) sum w_i
    (the max cancelled symbolically) and z_c - m formed first, the loss is within a few eps of mpmath
    (sum(w*z) - m*sum(w) lost 3e-4 in float32)."""
    z = np.array(HUGE_ROWS, dtype=dtype)
    weight = np.array(HUGE_WEIGHT, dtype=dtype)
    target = np.array([1, 2, 4, 5])
    if name == "cross_entropy":
        probabilities = np.eye(6)[target]
        loss, *_ = call(load_kernel(name, backend), backend, z, target, weight, eps, 0.0, True)
    else:
        probabilities = np.array([[0.1, 0.2, 0.3, 0.4, 0.0, 0.0], [0.0, 0.3, 0.7, 0.0, 0.0, 0.0],
                                  [0.25, 0.0, 0.25, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]], dtype=dtype)
        loss, *_ = call(load_kernel(name, backend), backend, z, probabilities, weight, eps, 0.0, True)
    error = worst_relative_error(loss, exact_smoothed_loss(z, probabilities, eps))
    assert error <= ULPS * np.finfo(dtype).eps, error


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_keeps_a_tiny_probability(backend, dtype):
    """bce(p = 1e-30, t = 0) = -log(1 - p) = 1e-30 (log1p(-p)); log(1 - p) would give 0. Gradient torch's
    (p - t) / max(p (1 - p), 1e-12): 1e-30 / 1e-12 = 1e-18 at the tiny p (the exact derivative 1/(1 - p) = 1 there),
    1 / (1 - p) where p (1 - p) is above 1e-12."""
    p = np.array([1e-30, 2.0**-24, 0.5], dtype=dtype)
    t = np.zeros(3, dtype=dtype)
    loss, grad = call(load_kernel("bce", backend), backend, p, t, np.ones(3, dtype=dtype), True)
    exact = [1e-30, -np.log1p(-(2.0**-24)), np.log(2.0)]
    np.testing.assert_allclose(loss, np.array(exact, dtype=dtype), rtol=2 * np.finfo(dtype).eps, atol=0)
    torch_epsilon = float(np.float32(1e-12))  # torch's EPSILON is a float constant
    np.testing.assert_allclose(grad, [1e-30 / torch_epsilon, 1 / (1 - 2.0**-24), 2.0], rtol=2 * np.finfo(dtype).eps)


def test_cross_entropy_forms_the_shifted_target_logit_first():
    """The lowered cross_entropy has the row statement z_c_shifted = z_c - m and its loss uses it, not z_c."""
    from symxent.codegen.driver import lowered_functions
    from symxent.codegen.targets import NumpyTarget
    for low in lowered_functions(LOSSES["cross_entropy"], NumpyTarget()):
        statements = {str(s.symbol): s for s in low.statements}
        shifted = statements["z_c_shifted"]
        maximum = next(s.symbol for s in low.statements if s.op == "max")
        assert shifted.op == "assign" and shifted.expr == statements["z_c"].symbol - maximum
        loss = next(o.expr for o in low.outputs if o.name == "loss")
        assert loss.has(shifted.symbol) and not loss.has(statements["z_c"].symbol) and not loss.has(maximum)


def test_the_functional_options_table_is_the_catalogues_scalar_arguments():
    """symxent.semantics.KERNEL_OPTIONS (what the backends pass on by name, in the torch ops' order) lists the
    cross-entropy kernels' scalar arguments exactly: an option added to one and not the other fails here."""
    from symxent.codegen import LOSSES
    from symxent.codegen.roles import Role
    from symxent.semantics import KERNEL_OPTIONS
    for name in ("cross_entropy", "cross_entropy_prob"):
        assert [a.name for a in LOSSES[name].args if a.role is Role.SCALAR] == list(KERNEL_OPTIONS), name
