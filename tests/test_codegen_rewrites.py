"""The generator's rewrite rules: each keeps the value, fires where it should and not elsewhere,
refuses to run unless its identity is proved; and each rule is proved, used by a target, tested."""
import mpmath
import pytest
import sympy as sp
from sympy.codegen.cfunctions import log1p, exp2

from symxent.codegen import rewrites
from symxent.codegen.nodes import BOUND, LogSumExp, RowMax, recognise
from symxent.definitions import log_sigmoid, n, softplus, vector
from symxent.definitions.symbols import c, i, j, k

z = vector("z")
x, a, b = sp.symbols("x a b", real=True)
r = sp.Symbol("r", positive=True)

@pytest.fixture(autouse=True)
def thirty_digits():
    with mpmath.workdps(30):
        yield


#: rule name -> the test functions below that exercise it (checked by the meta-test)
TESTED = {}


def exercises(rule_name):
    def mark(fn):
        TESTED.setdefault(rule_name, []).append(fn.__name__)
        return fn
    return mark


def at(expr, values, size=3):
    """``expr`` at concrete numbers, 30 digits: n = size, z = values (Sum, nodes written out)."""
    def lse(node):
        return sp.log(sp.Add(*(sp.exp(node.element_at(m)) for m in range(size))))

    def rowmax(node):
        return sp.Max(*(node.element_at(m) for m in range(size)))
    expr = expr.replace(lambda e: isinstance(e, LogSumExp), lse).replace(lambda e: isinstance(e, RowMax), rowmax)
    expr = expr.subs({n: size, k: 1, c: 2}).doit()
    expr = expr.xreplace({z.base[m]: sp.Float(v, 30) for m, v in enumerate(values)})
    return sp.N(expr.subs({x: sp.Float("-3.25", 30), a: sp.Float("0.5", 30), b: sp.Float("1.5", 30),
                           r: sp.Float("0.25", 30)}), 30)


# --- exp_as_exp2 (the CUDA row kernels' element math) ----------------------------------------

@exercises("exp_as_exp2")
def test_exp_as_exp2_keeps_the_value_and_the_exponent_whole():
    """exp(z - m) -> exp2(log2e*(z - m)): the same number (log2e = 1/log(2)), the exponent not split into
    log2e*z - log2e*m (whose rounding at logits of 1e4 would cost 3e-4 relative)."""
    m = sp.Symbol("m", real=True)
    before = 3 * sp.exp(x - m) + sp.exp(-sp.Abs(x))
    after = rewrites.RULES["exp_as_exp2"](before)
    assert not after.has(sp.exp) and after.count(exp2) == 2
    assert exp2(rewrites.LOG2E * (x - m)) in after.atoms(exp2)
    values = {x: sp.Float("-3.25", 30), m: sp.Float("1.5", 30), rewrites.LOG2E: 1 / sp.log(2)}
    assert abs(sp.N(after.xreplace(values).rewrite(sp.Pow) - before.xreplace(values), 30)) < 1e-25


@exercises("exp_as_exp2")
def test_exp_as_exp2_leaves_expressions_without_exp_alone():
    before = sp.log(1 + x**2) + sp.Max(x, 0)
    assert rewrites.RULES["exp_as_exp2"](before) == before


# --- logsumexp_shift -------------------------------------------------------------------------

@exercises("logsumexp_shift")
def test_logsumexp_shift_introduces_the_row_max_and_keeps_the_value():
    """LogSumExp(z) -> max + log(sum(exp(z - max))): a RowMax appears, the value is unchanged."""
    before = LogSumExp(z[BOUND])
    after = rewrites.RULES["logsumexp_shift"](before)
    assert after.has(RowMax(z[BOUND])) and not after.has(LogSumExp)
    for values in ([0.5, -1.0, 2.0], [800.0, -800.0, 799.0]):
        exact = mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in values))
        assert abs(at(after, values) - exact) < 1e-25


@exercises("logsumexp_shift")
def test_logsumexp_shift_does_not_fire_without_a_logsumexp():
    """A plain log of a sum (no recognised node) is left alone."""
    expr = sp.log(sp.Sum(z[j] ** 2, (j, 0, n - 1)))
    assert rewrites.RULES["logsumexp_shift"](expr) == expr


# --- exp_add_log -----------------------------------------------------------------------------

@exercises("exp_add_log")
def test_exp_add_log_splits_the_log_of_a_positive_term():
    """exp(a - log(r)) -> exp(a) / r; value unchanged."""
    after = rewrites.RULES["exp_add_log"](sp.exp(a - 2 * sp.log(r)))
    assert after == sp.exp(a) / r ** 2
    assert abs(at(after, []) - mpmath.exp(mpmath.mpf("0.5")) / mpmath.mpf("0.25") ** 2) < 1e-25


@exercises("exp_add_log")
def test_exp_add_log_gives_the_shifted_softmax():
    """After recognise and logsumexp_shift, softmax is exp(z_k - m) / S: no exp(z_k) alone."""
    softmax_k = recognise(sp.exp(z[k]) / sp.Sum(sp.exp(z[j]), (j, 0, n - 1)), n)
    after = rewrites.optimize(softmax_k, (rewrites.RULES["logsumexp_shift"], rewrites.RULES["exp_add_log"]))
    exps = after.atoms(sp.exp)
    assert all(e.args[0].has(RowMax) for e in exps)
    values = [1e4, 3.0, 1e4 - 1]
    exact = mpmath.exp(mpmath.mpf(3) - mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in values)))
    assert abs(at(after, values) - exact) < 1e-25


@exercises("exp_add_log")
def test_exp_add_log_does_not_fire_on_a_log_of_unknown_sign_or_without_log():
    """exp(a + log(x)) with x of unknown sign, and exp(a + b), stay as they are."""
    rule = rewrites.RULES["exp_add_log"]
    assert rule(sp.exp(a + sp.log(x))) == sp.exp(a + sp.log(x))
    assert rule(sp.exp(a + b)) == sp.exp(a + b)


# --- sum_linearity ---------------------------------------------------------------------------

@exercises("sum_linearity")
def test_sum_linearity_pulls_row_factors_out_of_sums():
    """Sum(a*z[i] + z[i]**2) -> a*Sum(z[i]) + Sum(z[i]**2); a constant term becomes n*term."""
    before = sp.Sum(a * z[i] + z[i] ** 2 + b, (i, 0, n - 1))
    after = rewrites.RULES["sum_linearity"](before)
    assert after == a * sp.Sum(z[i], (i, 0, n - 1)) + sp.Sum(z[i] ** 2, (i, 0, n - 1)) + b * n
    values = [0.5, -1.0, 2.0]
    assert abs(at(after, values) - at(before, values)) < 1e-25


@exercises("sum_linearity")
def test_sum_linearity_does_not_fire_on_terms_that_all_depend_on_the_index():
    """Sum(w[i]*z[i]) has nothing to pull out."""
    w = vector("w")
    expr = sp.Sum(w[i] * z[i], (i, 0, n - 1))
    assert rewrites.RULES["sum_linearity"](expr) == expr


# --- sum_shift -------------------------------------------------------------------------------

w = vector("w")
STABLE_SUMS = tuple(rewrites.RULES[name] for name in ("logsumexp_shift", "sum_linearity", "sum_shift"))


def smoothing_term():
    """-sum_i w_i log_softmax(z)_i (the label-smoothing term), with the logsumexp recognised."""
    return recognise(-sp.Sum(w[i] * (z[i] - sp.log(sp.Sum(sp.exp(z[j]), (j, 0, n - 1)))), (i, 0, n - 1)), n)


def with_weights(expr, weights):
    return expr.subs(n, len(weights)).doit().xreplace({w.base[m]: sp.Float(v, 30) for m, v in enumerate(weights)})


@exercises("sum_shift")
def test_sum_shift_accumulates_the_shifted_logits_and_cancels_the_max():
    """-Sum(w*(z - lse)) -> -Sum(w*(z - m)) + log(S)*Sum(w): the max appears only inside sums (as z - m),
    never as m*Sum(w) next to a large Sum(w*z); the value is unchanged (30 digits, logits +-1e4)."""
    after = rewrites.optimize(smoothing_term(), STABLE_SUMS)
    m = RowMax(z[BOUND])
    sums = after.atoms(sp.Sum)
    assert sp.Sum((z[i] - m) * w[i], (i, 0, n - 1)) in sums
    assert sp.Sum(w[i] * z[i], (i, 0, n - 1)) not in sums
    assert not after.xreplace({s: sp.Dummy() for s in sums}).has(m), after
    weights, values = [0.5, 2.0, 1.5], [1e4, -1e4, 1e4 - 1e-3]
    lse = mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in values))
    exact = -sum(mpmath.mpf(wi) * (mpmath.mpf(v) - lse) for wi, v in zip(weights, values))
    assert abs(at(with_weights(after, weights), values) - exact) < 1e-25 * abs(exact)


@exercises("sum_shift")
def test_sum_shift_of_a_sum_without_a_matching_term_keeps_the_value():
    """Sum(w*z) with no -m to cancel: Sum(w*(z - m)) + m*Sum(w) (both forms are fine), value kept."""
    expr = recognise(sp.log(sp.Sum(sp.exp(z[j]), (j, 0, n - 1))) - sp.Sum(w[i] * z[i], (i, 0, n - 1)), n)
    after = rewrites.optimize(expr, STABLE_SUMS)
    assert sp.Sum((z[i] - RowMax(z[BOUND])) * w[i], (i, 0, n - 1)) in after.atoms(sp.Sum)
    weights, values = [0.5, 2.0, 1.5], [3.0, -1.0, 2.5]
    assert abs(at(with_weights(after, weights), values) - at(with_weights(expr, weights), values)) < 1e-25


@exercises("sum_shift")
def test_sum_shift_does_not_fire_without_a_row_max_or_on_nonlinear_sums():
    """No RowMax in the expression, a sum nonlinear in z, a sum already holding m: unchanged."""
    rule = rewrites.RULES["sum_shift"]
    linear = sp.Sum(w[i] * z[i], (i, 0, n - 1))
    assert rule(linear) == linear
    m = RowMax(z[BOUND])
    square = sp.Sum(z[i] ** 2, (i, 0, n - 1)) + m
    assert rule(square) == square
    shifted = sp.log(sp.Sum(sp.exp(z[j] - m), (j, 0, n - 1))) + m + sp.Sum(w[i] * (z[i] - m), (i, 0, n - 1))
    assert rule(shifted) == shifted


# --- log1p_def -------------------------------------------------------------------------------

@exercises("log1p_def")
def test_log1p_def_keeps_a_tiny_p_that_log_of_one_minus_p_loses():
    """log(1 - p) -> log1p(-p): equal at 30 digits, and in float64 the printed form keeps p = 1e-30
    (where log(1 - p) is log(1.0) = 0)."""
    import numpy as np
    from symxent.codegen.printers import NumpyArrayPrinter
    after = rewrites.RULES["log1p_def"](sp.log(1 - r))
    assert after == log1p(-r)
    assert abs(at(after.rewrite(sp.log), []) - mpmath.log1p(-mpmath.mpf("0.25"))) < 1e-25
    code = NumpyArrayPrinter({"fully_qualified_modules": True}).doprint(after)
    got = eval(code, {"numpy": np, "r": np.float64(1e-30)})  # noqa: S307 - our own printed expression
    assert got == -1e-30 and np.log(1 - np.float64(1e-30)) == 0.0


@exercises("log1p_def")
def test_log1p_def_does_not_fire_without_a_literal_one():
    """log(p), log(2 - p), log(Sum(...)) stay logs."""
    rule = rewrites.RULES["log1p_def"]
    for expr in (sp.log(r), sp.log(2 - r), sp.log(sp.Sum(sp.exp(z[j]), (j, 0, n - 1))), sp.log(a + b)):
        assert rule(expr) == expr


# --- softplus_stable / log_sigmoid_stable ------------------------------------------------------

@pytest.mark.parametrize("value", ["-1000", "-3.5", "0", "2.25", "1000"], ids=["underflow", "neg", "zero", "pos", "overflow"])
@exercises("softplus_stable")
def test_softplus_stable_matches_mpmath_at_extreme_inputs(value):
    """softplus(x) -> Max(x, 0) + log1p(exp(-|x|)), equal to log(1 + e^x) at 30 digits."""
    after = rewrites.RULES["softplus_stable"](softplus(x))
    assert after == sp.Max(x, 0) + log1p(sp.exp(-sp.Abs(x)))
    got = sp.N(after.subs(x, sp.Float(value, 30)).rewrite(sp.log), 30)
    assert abs(got - mpmath.log1p(mpmath.exp(mpmath.mpf(value)))) < mpmath.mpf(10) ** -25


@exercises("softplus_stable")
def test_softplus_stable_does_not_fire_on_other_functions():
    """log(1 + exp(x)) written out is not a softplus node; log_sigmoid is another rule's job."""
    rule = rewrites.RULES["softplus_stable"]
    assert rule(sp.log(1 + sp.exp(x))) == sp.log(1 + sp.exp(x))
    assert rule(log_sigmoid(x)) == log_sigmoid(x)


@pytest.mark.parametrize("value", ["-1000", "-3.5", "0", "2.25", "1000"], ids=["underflow", "neg", "zero", "pos", "overflow"])
@exercises("log_sigmoid_stable")
def test_log_sigmoid_stable_matches_mpmath_at_extreme_inputs(value):
    """log_sigmoid(x) -> Min(x, 0) - log1p(exp(-|x|)), equal to -log(1 + e^-x) at 30 digits."""
    after = rewrites.RULES["log_sigmoid_stable"](log_sigmoid(x))
    got = sp.N(after.subs(x, sp.Float(value, 30)).rewrite(sp.log), 30)
    assert abs(got + mpmath.log1p(mpmath.exp(-mpmath.mpf(value)))) < mpmath.mpf(10) ** -25


@exercises("log_sigmoid_stable")
def test_log_sigmoid_stable_does_not_fire_on_softplus():
    """A softplus is not a log_sigmoid."""
    assert rewrites.RULES["log_sigmoid_stable"](softplus(x)) == softplus(x)


# --- delta_sum -------------------------------------------------------------------------------

@exercises("delta_sum")
def test_delta_sum_gathers_the_term_at_a_class_of_the_row_and_is_zero_elsewhere():
    """Sum(delta(i, t)*(z[i] - a)) -> z[t] - a where 0 <= t <= n - 1, else 0 (t = -1: a shard without the target)."""
    t = sp.Symbol("t", integer=True)
    before = sp.Sum(sp.KroneckerDelta(i, t) * (z[i] - a), (i, 0, n - 1))
    after = rewrites.RULES["delta_sum"](before)
    assert not after.has(sp.Sum) and after.has(sp.Piecewise)
    values = [0.5, -1.0, 2.0]
    for target in (-1, 0, 2, 3):
        written_out = sum(((values[m] - 0.5) if m == target else 0.0) for m in range(3))  # n = 3, a = 0.5
        got = after.subs({n: 3, t: target, a: sp.Float("0.5", 30)})
        got = got.xreplace({z.base[m]: sp.Float(v, 30) for m, v in enumerate(values)})
        assert abs(float(got) - written_out) < 1e-25, target


@exercises("delta_sum")
def test_delta_sum_does_not_fire_on_a_delta_free_of_the_sum_index():
    """Sum(delta(k, c)*z[i]) and Sum(z[i]) sift nothing."""
    for expr in (sp.Sum(sp.KroneckerDelta(k, c) * z[i], (i, 0, n - 1)), sp.Sum(z[i], (i, 0, n - 1))):
        assert rewrites.RULES["delta_sum"](expr) == expr


# --- the proof gate --------------------------------------------------------------------------

def test_rule_refuses_to_apply_when_its_identity_is_not_proved(monkeypatch):
    """With the prover's verdict not 'proved', applying the rule raises, naming the identity."""
    monkeypatch.setattr(rewrites, "identity_verdict", lambda name: "unknown")
    with pytest.raises(rewrites.UnprovedRewriteError, match="logsumexp_shift"):
        rewrites.RULES["logsumexp_shift"](LogSumExp(z[BOUND]))


def test_generation_fails_when_a_rule_is_unproved(monkeypatch):
    """The whole pipeline stops on an unproved rule (no silent fallback)."""
    from symxent.codegen import generate
    monkeypatch.setattr(rewrites, "identity_verdict", lambda name: "refuted" if name == "exp_add_log" else "proved")
    from symxent.codegen import driver
    driver._stable.cache_clear()
    with pytest.raises(rewrites.UnprovedRewriteError, match="exp_add_log"):
        generate("softmax", "numpy")
    driver._stable.cache_clear()


def test_sympy_wrong_logsumexp_rule_is_not_used():
    """SymPy 1.14's logsumexp_2terms_opt is wrong; no target uses it (nor optims_c99)."""
    from symxent.codegen.targets import NumpyTarget, TorchTarget
    from symxent.codegen.c_target import CTarget
    for target in (NumpyTarget(), TorchTarget(), CTarget()):
        assert all(isinstance(rule, rewrites.Rule) for rule in target.optims)


# --- meta ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(rewrites.RULES))
def test_every_rule_is_proved_used_by_a_target_and_tested(name):
    """Each registered rule: its identity is proved by the prover, some target uses it, tests exist."""
    from symxent.codegen.c_target import CTarget
    from symxent.codegen.cuda.target import CudaTarget
    from symxent.codegen.targets import NumpyTarget, TorchTarget
    rule = rewrites.RULES[name]
    assert rewrites.identity_verdict(rule.identity) == "proved"
    targets = (NumpyTarget(), TorchTarget(), CTarget(), CudaTarget())
    assert any(rule in target.optims or rule in getattr(target, "element_rules", ()) for target in targets)
    assert len(TESTED.get(name, [])) >= 2, f"rule {name} needs a value test and a must-not-fire test"
    assert "->" in rule.doc.splitlines()[0], "the docstring starts with ``before -> after``"
