"""The prover decides small claims honestly: proofs reach 0, refutations carry real counterexamples.

Expected values of counterexamples are recomputed here with mpmath from hand-written formulas.
"""
import mpmath
import pytest
import sympy as sp

from symxent import (c, class_sum, cross_entropy, entropy, i, j, k, kl_divergence, logsumexp, n, softmax,
                     softmax_cross_entropy, softmax_cross_entropy_prob, softplus, stable_softplus, vector, x)
from symxent.prove import PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN, Step, Verdict, prove

mpmath.mp.dps = 50
z, y = vector("z"), vector("y")
p, q = vector("p", positive=True), vector("q", positive=True)
a, b = sp.symbols("a b", real=True)
SUMS_TO_ONE = (sp.Eq(sp.Sum(p[i], (i, 0, n - 1)), 1), sp.Eq(sp.Sum(q[i], (i, 0, n - 1)), 1))


def _mp(text):
    return mpmath.mpf(text)


def _vector_values(cex, name):
    size = int(cex["n"])
    return [_mp(cex[f"{name}[{m}]"]) for m in range(size)]


def _assert_sides_match(cex, lhs, rhs):
    """The reported sides equal the independent values (40 digits) and clearly differ."""
    assert abs(_mp(cex["lhs"]) - lhs) <= mpmath.mpf(10) ** -40 * max(1, abs(lhs))
    assert abs(_mp(cex["rhs"]) - rhs) <= mpmath.mpf(10) ** -40 * max(1, abs(rhs))
    assert abs(lhs - rhs) > mpmath.mpf(10) ** -10


# --- proved ---------------------------------------------------------------------------------

def test_logsumexp_shift_is_proved_for_general_n():
    """log sum exp z = a + log sum exp(z - a) for every n, with the chain of steps ending at 0."""
    shifted = a + sp.log(class_sum(lambda m: sp.exp(z[m] - a), z, index=j))
    verdict = prove(logsumexp(z), shifted)
    assert verdict.status == PROVED
    assert "every n" in verdict.method
    assert verdict.steps and verdict.steps[-1].expr == 0
    assert all(isinstance(step, Step) and step.explanation for step in verdict.steps)
    assert 0 < verdict.seconds < 5


def test_stable_softplus_is_proved_by_a_case_split_on_the_sign():
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)) needs the cases x > 0, x < 0, x = 0."""
    verdict = prove(softplus(x), stable_softplus(x))
    assert verdict.status == PROVED
    assert verdict.method.startswith("case split")
    cases = [s.explanation for s in verdict.steps if s.explanation.startswith("case")]
    assert any("> 0" in c for c in cases) and any("< 0" in c for c in cases) and any("= 0" in c for c in cases)


def test_gradient_with_delta_sum_is_proved_for_general_n():
    """d/dz_k (logsumexp(z) - z_c) = softmax_k - delta_kc (Kronecker-delta sums taken)."""
    verdict = prove(sp.Derivative(softmax_cross_entropy(z, c), z[k]), softmax(z, k) - sp.KroneckerDelta(k, c))
    assert verdict.status == PROVED
    assert any("class indices in 0..n-1" in step.explanation for step in verdict.steps)


def test_constraint_sum_to_one_is_what_makes_the_soft_target_gradient_true():
    """softmax_k - y_k is the gradient only when sum(y) = 1: proved with it, refuted without."""
    grad = sp.Derivative(softmax_cross_entropy_prob(z, y), z[k])
    constrained = prove(grad, softmax(z, k) - y[k], assumptions=(sp.Eq(sp.Sum(y[j], (j, 0, n - 1)), 1),))
    assert constrained.status == PROVED  # bound variable j differs from the definition's i: matched anyway
    free = prove(grad, softmax(z, k) - y[k])
    assert free.status == REFUTED
    cex = free.counterexample
    size, kk = int(cex["n"]), int(cex["k"])
    zs, ys = _vector_values(cex, "z"), _vector_values(cex, "y")
    soft = [mpmath.exp(v) / mpmath.fsum(mpmath.exp(u) for u in zs) for v in zs]
    true_grad = soft[kk] * mpmath.fsum(ys) - ys[kk]  # d/dz_k of -sum_i y_i log softmax_i, by hand
    assert len(zs) == size
    _assert_sides_match(cex, true_grad, soft[kk] - ys[kk])


def test_concrete_n_gives_proved_concrete():
    """With n = 3 the claim is shown for three classes (every value of the free index) only."""
    verdict = prove(sp.Derivative(softmax_cross_entropy(z, c), z[k]), softmax(z, k) - sp.KroneckerDelta(k, c), n=3)
    assert verdict.status == PROVED_CONCRETE
    assert "n = 3" in verdict.method


def test_gibbs_inequality_is_proved_with_the_log_lemma():
    """KL(p || q) >= 0 for probability vectors, through the lower bound of log x <= x - 1."""
    verdict = prove(kl_divergence(p, q), 0, assumptions=SUMS_TO_ONE, relation=">=")
    assert verdict.status == PROVED
    assert "log x <= x - 1" in verdict.method
    assert any(step.relation == ">=" for step in verdict.steps)
    assert verdict.steps[-1].expr == 0


def test_natural_domain_of_logs_is_stated():
    """log(x a) = log x + log a is proved where the logs are real (x, a > 0), and the step says so."""
    verdict = prove(sp.log(x * a), sp.log(x) + sp.log(a))
    assert verdict.status == PROVED
    assert any("natural domain" in step.explanation for step in verdict.steps)


def test_formula_strings_are_parsed_not_evaluated():
    verdict = prove("softplus(x) - softplus(-x)", "x")
    assert verdict.status == PROVED


# --- refuted --------------------------------------------------------------------------------

def test_kl_symmetry_is_refuted_with_a_counterexample_that_really_differs():
    verdict = prove(kl_divergence(p, q), kl_divergence(q, p), assumptions=SUMS_TO_ONE)
    assert verdict.status == REFUTED
    cex = verdict.counterexample
    ps, qs = _vector_values(cex, "p"), _vector_values(cex, "q")
    assert abs(mpmath.fsum(ps) - 1) < 1e-45 and abs(mpmath.fsum(qs) - 1) < 1e-45  # respects the constraints
    kl_pq = mpmath.fsum(u * mpmath.log(u / v) for u, v in zip(ps, qs))
    kl_qp = mpmath.fsum(v * mpmath.log(v / u) for u, v in zip(ps, qs))
    _assert_sides_match(cex, kl_pq, kl_qp)


def test_sympy_two_term_logsumexp_rewrite_is_refuted():
    """SymPy 1.14's logsumexp_2terms_opt writes max(a, b) + log1p(exp(min(a, b))) (as sympy.codegen.rewriting
    prints it, asked here): its exponent is not shifted by the max. Refuted, the counterexample checked in mpmath."""
    from sympy.codegen.cfunctions import log1p
    from sympy.codegen.rewriting import logsumexp_2terms_opt, optimize
    rewritten = optimize(sp.log(sp.exp(a) + sp.exp(b)), [logsumexp_2terms_opt])
    assert rewritten == sp.Max(a, b) + log1p(sp.exp(sp.Min(a, b)))
    verdict = prove(sp.log(sp.exp(a) + sp.exp(b)), sp.Max(a, b) + sp.log(1 + sp.exp(sp.Min(a, b))))
    assert verdict.status == REFUTED
    cex = verdict.counterexample
    av, bv = _mp(cex["a"]), _mp(cex["b"])
    lhs = mpmath.log(mpmath.exp(av) + mpmath.exp(bv))
    rhs = max(av, bv) + mpmath.log1p(mpmath.exp(min(av, bv)))
    _assert_sides_match(cex, lhs, rhs)
    right = max(av, bv) + mpmath.log1p(mpmath.exp(min(av, bv) - max(av, bv)))  # the shifted form is lhs
    assert abs(lhs - right) < mpmath.mpf(10) ** -40


def test_false_claim_at_a_concrete_n_is_refuted_at_that_n():
    doubled = class_sum(lambda m: sp.exp(2 * z[m]), z, index=j)
    verdict = prove(sp.exp(2 * z[k]) / doubled, softmax(z, k), n=3)
    assert verdict.status == REFUTED
    cex = verdict.counterexample
    assert cex["n"] == "3"
    zs, kk = _vector_values(cex, "z"), int(cex["k"])
    lhs = mpmath.exp(2 * zs[kk]) / mpmath.fsum(mpmath.exp(2 * v) for v in zs)
    rhs = mpmath.exp(zs[kk]) / mpmath.fsum(mpmath.exp(v) for v in zs)
    _assert_sides_match(cex, lhs, rhs)


def test_false_inequality_is_refuted():
    """Entropy is not <= 0: a counterexample with H(p) > 0."""
    verdict = prove(entropy(p), 0, assumptions=SUMS_TO_ONE[:1], relation="<=")
    assert verdict.status == REFUTED
    ps = _vector_values(verdict.counterexample, "p")
    h = -mpmath.fsum(u * mpmath.log(u) for u in ps)
    assert h > 0 and abs(_mp(verdict.counterexample["lhs"]) - h) < mpmath.mpf(10) ** -40


def test_sign_assumption_decides_abs():
    assert prove(sp.Abs(x), x, assumptions=(x >= 0,)).status == PROVED
    assert prove(sp.Abs(x), x, assumptions=(sp.Q.positive(x),)).status == PROVED
    verdict = prove(sp.Abs(x), x)
    assert verdict.status == REFUTED and _mp(verdict.counterexample["x"]) < 0


# --- unknown is an honest answer ---------------------------------------------------------------

def test_identity_simplify_cannot_decide_is_unknown_not_proved():
    """Euler's reflection Li2(r) + Li2(1 - r) = pi^2/6 - log r log(1 - r) (0 < r < 1) is true, but
    simplify does not reach 0 (and SymPy's .equals even answers False): the prover says unknown."""
    r = sp.Symbol("r", positive=True)
    lhs = sp.polylog(2, r) + sp.polylog(2, 1 - r)
    rhs = sp.pi**2 / 6 - sp.log(r) * sp.log(1 - r)
    assert sp.simplify(lhs - rhs) != 0
    assert mpmath.polylog(2, 0.3) + mpmath.polylog(2, 0.7) == pytest.approx(
        float(mpmath.pi**2 / 6 - mpmath.log(0.3) * mpmath.log(0.7)))  # it is true
    verdict = prove(lhs, rhs, assumptions=(r < 1,))
    assert verdict.status == UNKNOWN
    assert verdict.counterexample is None


def test_true_inequality_without_a_proof_is_unknown():
    """logsumexp(z) >= mean(z) holds (Jensen: log of a mean of exponentials is at least the mean), but
    no tactic of the prover shows it: unknown, not proved and not refuted. (H(p) >= 0, this test's
    earlier example, is proved now: elements >= 0 summing to 1 are each <= 1, so -p log p >= 0.)"""
    verdict = prove(logsumexp(z), class_sum(lambda m: z[m], z) / n, relation=">=")
    assert verdict.status == UNKNOWN
    assert verdict.counterexample is None and verdict.checked_points >= 20
    assert prove(entropy(p), 0, assumptions=SUMS_TO_ONE[:1], relation=">=").status == PROVED


# --- the verdict object and bad input ------------------------------------------------------------

def test_verdict_serialises_and_prints_latex():
    verdict = prove(cross_entropy(p, p), entropy(p))
    assert isinstance(verdict, Verdict)
    record = verdict.to_dict()
    assert record["status"] == PROVED and record["counterexample"] is None
    assert {"method", "seconds", "steps", "lhs", "rhs"} <= set(record)
    assert all({"explanation", "expr", "latex"} <= set(s) for s in record["steps"])
    text = verdict.latex()
    assert text.startswith("\\begin{aligned}") and text.endswith("\\end{aligned}")


@pytest.mark.parametrize("kwargs, error", [
    (dict(relation="!="), ValueError),
    (dict(n=0), ValueError),
    (dict(n=2.5), ValueError),
    (dict(assumptions=(sp.Ne(x, 0),)), ValueError),
    (dict(assumptions=(sp.Eq(x, 2),)), ValueError),
    (dict(assumptions=(sp.Eq(sp.Sum(z[i] ** 2, (i, 0, n - 1)), 1),)), ValueError),
], ids=["relation", "n_zero", "n_float", "assumption", "eq_on_symbol", "unsampleable_constraint"])
def test_bad_arguments_raise_clear_errors(kwargs, error):
    with pytest.raises(error):
        prove(x, x, **kwargs)


def test_delta_outside_the_class_range_is_not_summed_as_inside():
    """sum_{i<n} delta(i, n) z_i is 0, not z_n: only class indices are taken to lie in 0..n-1."""
    verdict = prove(sp.Sum(sp.KroneckerDelta(i, n) * z[i], (i, 0, n - 1)), z[n])
    assert verdict.status != PROVED


def test_non_expression_side_is_a_type_error():
    with pytest.raises(TypeError):
        prove([1, 2], x)
