"""User-defined row losses: formula (safe parser) or SymPy expression -> derived gradient -> kernels
for numpy, torch and c, each checked against a plain torch-autograd reference."""
import numpy as np
import pytest
import sympy as sp

torch = pytest.importorskip("torch")

from symxent.codegen import Loss, compile_loss, generate  # noqa: E402
from symxent.definitions import logsumexp, softmax, vector  # noqa: E402
from symxent.definitions.symbols import c  # noqa: E402

BACKENDS = ["numpy", "torch", "c"]
TOL = {np.float64: 1e-9, np.float32: 5e-5}


def focal_reference(z, target, gamma):
    logp = torch.log_softmax(z, 1).gather(1, target[:, None])[:, 0]
    return -(1 - logp.exp()) ** gamma * logp


def z_loss_reference(z, target, scale):
    return F_ce(z, target) + scale * torch.logsumexp(z, 1) ** 2


def softcap_reference(z, target, cap):
    return F_ce(cap * torch.tanh(z / cap), target)


def F_ce(z, target):
    return torch.nn.functional.cross_entropy(z, target, reduction="none")


CASES = {
    "focal": ("-(1 - softmax(z)[c])**gamma * log_softmax(z)[c]", {"gamma": 2.0},
              lambda z, t: focal_reference(z, t, 2.0)),
    "z_loss": ("logsumexp(z) - z[c] + lse_square_scale*logsumexp(z)**2", {"lse_square_scale": 1e-4},
               lambda z, t: z_loss_reference(z, t, 1e-4)),
    "softcap": ("log(sum(exp(cap*tanh(z[i]/cap)), i)) - cap*tanh(z[c]/cap)", {"cap": 30.0},
                lambda z, t: softcap_reference(z, t, 30.0)),
}


def logits(dtype, extreme):
    rng = np.random.default_rng(7)
    z = rng.normal(size=(5, 6)) * 3
    target = rng.integers(0, 6, 5)
    if extreme:
        z[0, 0], target[0] = 1e4, 0  # the target class holds all the probability
        z[1] = -1e4
        z[1, 3] = 50.0
    return z.astype(dtype), target


def run(kernel, backend, z, target, params):
    if backend == "torch":
        loss, grad = kernel(torch.from_numpy(z), torch.from_numpy(target), params, True)
        return loss.numpy(), grad.numpy()
    return kernel(z, target, params, True)


@pytest.mark.parametrize("extreme", [False, True], ids=["ordinary", "extreme-logits"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_user_loss_from_formula_matches_torch_autograd(name, backend, dtype, extreme):
    """The generated loss and gradient equal torch's autograd of the same formula written in torch."""
    formula, params, reference = CASES[name]
    kernel = compile_loss(Loss.from_formula(formula, name=name), backend)
    z, target = logits(dtype, extreme)
    loss, grad = run(kernel, backend, z, target, params)
    x = torch.tensor(z, requires_grad=True)
    want = reference(x, torch.tensor(target))
    want.sum().backward()
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


def test_user_loss_from_a_sympy_expression_takes_the_same_path():
    """Loss.from_expr(focal as SymPy) generates the same code as the formula."""
    z, gamma = vector("z"), sp.Symbol("gamma", real=True)
    p_c = softmax(z, c)
    expr = -(1 - p_c) ** gamma * (z[c] - logsumexp(z))
    from_expr = generate(Loss.from_expr(expr, name="focal"), "numpy")
    from_formula = generate(Loss.from_formula(CASES["focal"][0], name="focal"), "numpy")
    body = lambda text: text[text.index("def _focal"):text.index("def focal(")]  # noqa: E731 - headers differ
    assert body(from_expr) == body(from_formula)


def test_generated_user_loss_names_its_parameters_and_source():
    """The generated file quotes the formula and reads gamma from params."""
    text = generate(Loss.from_formula(CASES["focal"][0], name="focal"), "c")
    assert "-(1 - softmax(z)[c])**gamma * log_softmax(z)[c]" in text
    assert "double p_gamma_value" in text


def test_missing_parameter_is_a_clear_error():
    """params without gamma: KeyError naming it."""
    kernel = compile_loss(Loss.from_formula(CASES["focal"][0], name="focal"), "c")
    z, target = logits(np.float64, False)
    with pytest.raises(KeyError, match="gamma"):
        kernel(z, target, {}, True)


@pytest.mark.parametrize("formula, message", [
    ("logsumexp(z) - y[c]", "vectors"),
    ("logsumexp(z) == z[c]", "relation"),
    ("logsumexp(w) - w[k]", "logits|free class"),
    ("__import__('os')", "."),
])
def test_bad_user_losses_are_rejected_with_a_clear_error(formula, message):
    """Other vectors, relations, free indices and code are errors (never evaluated)."""
    with pytest.raises(ValueError, match=message):
        Loss.from_formula(formula, name="bad")


def test_loss_name_must_be_an_identifier():
    """The name becomes a Python/C identifier: checked."""
    with pytest.raises(ValueError, match="loss name"):
        Loss.from_formula("logsumexp(z) - z[c]", name="x; import os")


SMOOTHING_FORMS = ["-(1 - eps)*log_softmax(z)[c] - eps/n*sum(log_softmax(z)[i], i)",
                   "logsumexp(z) - (1 - eps)*z[c] - eps/n*sum(z[i], i)"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("formula", SMOOTHING_FORMS, ids=["log_softmax-form", "split-form"])
def test_user_label_smoothing_at_logits_1e4_is_accurate(formula, backend, dtype):
    """A user's label smoothing, however written, sums the shifted logits z - m (the max cancels
    symbolically) and forms z_c - m first: within a few eps of mpmath at logits +-1e4."""
    import mpmath
    eps = 0.1
    z = np.array([[1e4, 1e4 - 0.3, 1e4 - 1e-3, 1e4 - 2.0, 1e4 - 0.7, 1e4 - 1.1],
                  [3.0, -1e4, 2.0, 1e4, 1e4 - 30, 7.0]], dtype=dtype)
    target = np.array([2, 4])
    kernel = compile_loss(Loss.from_formula(formula, name="smoothing"), backend)
    loss, grad = run(kernel, backend, z, target, {"eps": eps})
    with mpmath.workdps(50):
        exact = []
        for row, c_ in zip(z, target):
            values = [mpmath.mpf(float(v)) for v in row]
            lse = max(values) + mpmath.log(mpmath.fsum(mpmath.exp(v - max(values)) for v in values))
            e = mpmath.mpf(eps)
            exact.append((1 - e) * (lse - values[c_]) + e / len(values) * mpmath.fsum(lse - v for v in values))
        error = max(abs(mpmath.mpf(float(g)) - x) / x for g, x in zip(loss, exact))
    assert np.isfinite(grad).all()
    assert error <= 8 * np.finfo(dtype).eps, float(error)
