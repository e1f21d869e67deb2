"""The prover never captures a free index, refutes only inside the stated domains, cross-examines
every proof numerically, and ends in bounded time and memory.

Expected values are written here by hand (mpmath) or follow from the definitions in the docstrings.
"""
import subprocess
import sys
import time

import mpmath
import pytest
import sympy as sp

import symxent as sx
from symxent.derive.engine import gradient
from symxent.prove import PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN, FormulaError, prove
from symxent.prove import limits, symbolic
from symxent.prove.claim import make_claim

mpmath.mp.dps = 50
FREE_INDICES = ("i", "j", "k", "l", "c")


def _mp(text):
    return mpmath.mpf(text)


# --- 1. bound indices are never captured ---------------------------------------------------------

@pytest.mark.parametrize("index", FREE_INDICES)
def test_gradient_of_logsumexp_by_any_free_index_is_softmax_not_one(index):
    """d logsumexp(z) / d z[j] is softmax(z)[j] whatever the name of j (the sum binds its own index)."""
    assert prove(f"diff(logsumexp(z), z[{index}])", f"softmax(z)[{index}]").status == PROVED
    wrong = prove(f"diff(logsumexp(z), z[{index}])", "1")
    assert wrong.status == REFUTED
    cex = wrong.counterexample
    zs = [_mp(cex[f"z[{m}]"]) for m in range(int(cex["n"]))]
    position = int(cex[index])
    softmax = mpmath.exp(zs[position]) / mpmath.fsum(mpmath.exp(v) for v in zs)
    assert abs(_mp(cex["lhs"]) - softmax) < mpmath.mpf(10) ** -40 and _mp(cex["rhs"]) == 1


@pytest.mark.parametrize("index", FREE_INDICES)
def test_every_catalogue_sum_differentiated_by_a_free_index(index):
    """Entropy and KL sum over i, softmax and logsumexp over j: their gradients by a free i or j."""
    assert prove(f"diff(entropy(p), p[{index}])", f"-log(p[{index}]) - 1").status == PROVED
    assert prove(f"diff(kl(p, q), q[{index}])", f"-p[{index}]/q[{index}]").status == PROVED
    assert prove(f"diff(ce(z, c, label_smoothing=eps), z[{index}])",
                 f"softmax(z)[{index}] - (1 - eps)*delta({index}, c) - eps/n").status == PROVED


@pytest.mark.parametrize("index", ["i", "j", "k", "l"])  # (c is the target: the sum runs over another index)
def test_gradient_rows_sum_to_zero_whatever_the_summation_index(index):
    assert prove(f"sum(diff(ce(z, c), z[{index}]), {index})", "0").status == PROVED


@pytest.mark.parametrize("index", [sx.i, sx.j, sx.k, sx.l])
def test_derive_by_a_free_index_named_like_a_sum_index(index):
    """gradient(ce, z, j) is softmax(z)[j] - delta(c, j) (it used to be 1 - delta(c, j))."""
    z = sx.vector("z")
    result = gradient(sx.softmax_cross_entropy(z, sx.c), z, index).result
    assert prove(result, sx.softmax(z, index) - sp.KroneckerDelta(index, sx.c)).status == PROVED
    shown = str(result)
    assert shown.count(f"z[{index}]") == 1  # the sum runs over another letter: readable, no clash


def test_derive_reasons_name_the_index_the_sum_runs_over():
    z = sx.vector("z")
    steps = gradient(sx.softmax_cross_entropy(z, sx.c), z, sx.j).steps
    chain = next(s for s in steps if s.explanation.startswith("chain rule"))
    assert "z_{i} / \\partial z_{j}" in chain.explanation  # the sum runs over i here, not j
    assert "Sum(exp(z[i]), (i, 0, n - 1))" in str(chain.expr)


# --- 2. refutations inside the domains, counterexamples checked ----------------------------------

def test_entropy_nonnegative_is_proved_and_never_refuted_outside_the_simplex():
    p = sx.vector("p")
    with_constraint = prove(sx.entropy(p), 0, assumptions=[sp.Eq(sp.Sum(p[sx.i], (sx.i, 0, sx.n - 1)), 1)],
                            relation=">=")
    assert with_constraint.status in (PROVED, UNKNOWN)  # real p summing to 1 may have p_i > 1: not a refutation
    assert prove("entropy(p)", "0", relation=">=").status == PROVED  # the natural domain: a distribution


@pytest.mark.parametrize("lhs, rhs, check", [
    ("ce(z, c, label_smoothing=eps)", "ce(z, c)", lambda cex: 0 <= _mp(cex["eps"]) <= 1),
    ("bce_with_logits(x, t)", "softplus(x) - x*t + 1", lambda cex: 0 <= _mp(cex["t"]) <= 1),
    ("kl(p, q)", "kl(q, p)", lambda cex: all(
        abs(mpmath.fsum(_mp(cex[f"{v}[{m}]"]) for m in range(int(cex["n"]))) - 1) < 1e-45
        and min(_mp(cex[f"{v}[{m}]"]) for m in range(int(cex["n"]))) > 0 for v in "pq")),
    ("bce(r, t)", "bce(t, r)", lambda cex: 0 <= _mp(cex["r"]) <= 1 and 0 <= _mp(cex["t"]) <= 1),
])
def test_counterexamples_lie_in_the_natural_domain(lhs, rhs, check):
    verdict = prove(lhs, rhs)
    assert verdict.status == REFUTED
    assert check(verdict.counterexample), verdict.counterexample
    gap = _mp(verdict.counterexample["lhs"]) - _mp(verdict.counterexample["rhs"])
    assert abs(gap - _mp(verdict.counterexample["lhs - rhs"])) < mpmath.mpf(10) ** -40 * max(1, abs(gap))


def test_an_expression_passed_as_label_smoothing_must_lie_in_its_domain():
    """label_smoothing=eps/2: the points drawn keep eps/2 in [0, 1] (eps itself in [0, 2])."""
    verdict = prove("ce(z, c, label_smoothing=eps/2)", "ce(z, c)")
    assert verdict.status == REFUTED and 0 <= _mp(verdict.counterexample["eps"]) / 2 <= 1


def test_stated_assumptions_replace_the_natural_domain():
    """entropy(p) <= 0 is refuted on distributions; the user can widen p to positive vectors."""
    narrow = prove("ce(z, c, label_smoothing=eps)", "ce(z, c)", assumptions=["0 <= eps <= 1/10"])
    assert narrow.status == REFUTED and 0 <= _mp(narrow.counterexample["eps"]) <= sp.Rational(1, 10)
    assert prove("kl(p, q)", "0", relation=">=").status == PROVED  # on distributions (natural): Gibbs
    wide = prove("kl(p, q)", "0", assumptions=["p: positive", "q: positive"], relation=">=")
    assert wide.status == REFUTED  # positive vectors that do not sum to 1 can have KL < 0
    size = int(wide.counterexample["n"])
    ps = [_mp(wide.counterexample[f"p[{m}]"]) for m in range(size)]
    qs = [_mp(wide.counterexample[f"q[{m}]"]) for m in range(size)]
    assert min(ps + qs) > 0 and mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(ps, qs)) < 0


@pytest.mark.parametrize("bad", ["pp: distribution", "p: probabilty", "0 <= eps <= 1 <= 2 >= 0", "x + y > 0"])
def test_bad_assumptions_are_clear_errors(bad):
    with pytest.raises(ValueError):
        prove("entropy(p) + x*eps", "0", assumptions=[bad])


def test_with_a_fixed_n_a_vector_literal_mixes_with_named_vectors():
    verdict = prove("kl(p, [1/3, 1/3, 1/3])", "log(3) - entropy(p)", n=3)
    assert verdict.status == PROVED_CONCRETE
    assert prove("kl(p, [1/2, 1/2])", "log(2) - entropy(p)", n=2).status == PROVED_CONCRETE


# --- 3. cross-examination ------------------------------------------------------------------------

def test_every_proof_is_checked_at_twenty_points_or_more():
    for lhs, rhs in [("softplus(x) - softplus(-x)", "x"), ("log_softmax(z)[k]", "z[k] - logsumexp(z)"),
                     ("diff(ce(z, c), z[k])", "softmax(z)[k] - delta(k, c)")]:
        verdict = prove(lhs, rhs)
        assert verdict.status == PROVED and verdict.checked_points >= 20


def test_a_symbolic_proof_contradicted_by_the_numbers_is_an_internal_error(monkeypatch):
    """If the symbolic steps ever 'prove' a false claim, the verdict is unknown with the point, never proved."""
    monkeypatch.setattr("symxent.prove.prover.decide", lambda claim, trace: (True, "a broken rule"))
    verdict = prove("logsumexp(z)", "z[k]")
    assert verdict.status == UNKNOWN and verdict.internal_error is not None
    assert "internal error" in verdict.method
    cex = verdict.internal_error
    zs = [_mp(cex[f"z[{m}]"]) for m in range(int(cex["n"]))]
    assert abs(mpmath.log(mpmath.fsum(mpmath.exp(v) for v in zs)) - zs[int(cex["k"])]) > 1e-20


def test_the_cli_exits_4_on_an_internal_error(monkeypatch, capsys):
    from symxent.cli import main
    monkeypatch.setattr("symxent.prove.prover.decide", lambda claim, trace: (True, "a broken rule"))
    assert main(["prove", "logsumexp(z)", "z[k]"]) == 4
    assert "INTERNAL ERROR" in capsys.readouterr().err


# --- 4. bounded time and memory ------------------------------------------------------------------

def test_a_huge_expansion_is_refused_quickly_and_the_claim_still_decided():
    start = time.monotonic()
    verdict = prove("(a+b+c+d)**1000", "0")
    assert time.monotonic() - start < 30
    assert verdict.status == REFUTED  # the numbers decide: the power is not 0
    assert any("would give about" in s.explanation for s in verdict.steps)
    with pytest.raises(limits.ExpansionLimit):
        limits.guarded_expand(sp.sympify("(a+b+c+d)**1000"))


def test_the_time_limit_stops_a_runaway_step(monkeypatch):
    def runaway(claim, trace):
        while True:
            pass
    monkeypatch.setattr("symxent.prove.prover.decide", runaway)
    start = time.monotonic()
    verdict = prove("x", "x", timeout=2)
    assert time.monotonic() - start < 30  # generous: the limit is 2 s
    assert verdict.status == UNKNOWN and verdict.method.startswith("limit: time")


def test_the_memory_limit_stops_a_runaway_allocation(monkeypatch):
    def hog(claim, trace):
        blocks = []
        while True:
            blocks.append(bytearray(50 * 2**20))
    monkeypatch.setattr("symxent.prove.prover.decide", hog)
    verdict = prove("x", "x", timeout=60, memory=256 * 2**20)
    assert verdict.status == UNKNOWN and verdict.method.startswith("limit: memory")


def test_the_cli_ends_within_its_timeout_on_a_hard_input():
    """A nested exponential tower: whatever SymPy does with it, the command answers within the limit."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "symxent", "prove", "exp(exp(exp(exp(x))))**7",
                             "exp(exp(exp(exp(x))))**7 + 0*x", "--timeout", "5"], capture_output=True, text=True,
                            timeout=60)
    assert time.monotonic() - start < 40
    assert result.returncode in (0, 3), result.stderr


# --- 5. the formula syntax users write -------------------------------------------------------------

@pytest.mark.parametrize("lhs, rhs", [
    ("softmax(z/T)[k]", "exp(z[k]/T)/sum(exp(z[j]/T), j)"),
    ("logsumexp(z + a)", "logsumexp(z) + a"),
    ("sum(a*z)", "a*sum(z)"),
    ("ln(x*y)", "ln(x) + ln(y)"),
    ("KL(p, q)", "H(p, q) - H(p)"),
    ("kl(p, uniform(n))", "log(n) - entropy(p)"),
    ("max(z) - logsumexp(z)", "-logsumexp(z - max(z))"),
])
def test_formula_syntax_from_textbooks(lhs, rhs):
    assert prove(lhs, rhs).status == PROVED


def test_max_of_a_vector_is_its_largest_element_not_a_scalar():
    assert prove("max(z)", "z[k]", relation=">=").status == PROVED
    verdict = prove("max(z)", "z[0]")
    assert verdict.status == REFUTED
    zs = [_mp(verdict.counterexample[f"z[{m}]"]) for m in range(int(verdict.counterexample["n"]))]
    assert _mp(verdict.counterexample["lhs"]) == max(zs)


@pytest.mark.parametrize("side, text", [("lhs", "logsumexp(z"), ("rhs", "softmax(z)[k][0]")])
def test_parse_errors_say_which_side(side, text):
    with pytest.raises(FormulaError, match=f"^{side}: "):
        prove(text, "1") if side == "lhs" else prove("1", text)


def test_claim_collects_indices_inside_derivative_variables():
    claim = make_claim("diff(logsumexp(z), z[j])", "1")
    assert [s.name for s in claim.indices] == ["j"]
    assert symbolic.index_symbols(claim.left) == claim.indices


# --- found by review: each once gave a wrong verdict or a crash ----------------------------------------

def test_a_term_of_a_sum_is_only_taken_at_an_index_inside_its_range():
    """sum_{i<=7} exp(z_i) >= exp(z_k) is false for k = 8 (z_8 large): never proved."""
    z = sp.IndexedBase("z", real=True)
    for lhs, rhs in [(sp.log(sp.Sum(sp.exp(z[sx.i]), (sx.i, 0, 7))), z[sx.k]),
                     (sp.Sum(sp.exp(z[sx.i]), (sx.i, 0, 7)), sp.exp(z[sx.k]))]:
        verdict = prove(lhs, rhs, relation=">=")
        assert verdict.status != PROVED and not verdict.internal_error


def test_one_name_is_one_variable_across_formula_and_sympy_sides():
    """A SymPy IndexedBase('z') and the formula's z are the same vector: no refutation of a true claim
    with values drawn apart."""
    z, p = sp.IndexedBase("z"), sp.IndexedBase("p")
    assert prove(sp.log(sp.Sum(sp.exp(z[sx.i]), (sx.i, 0, sx.n - 1))), "logsumexp(z)").status == PROVED
    assert prove(sp.Sum(p[sx.i] * sp.log(p[sx.i]), (sx.i, 0, sx.n - 1)), "-entropy(p)").status == PROVED
    assert prove(sp.exp(sp.Symbol("x")), "1 + x", relation=">=").status != REFUTED


def test_an_element_outside_the_vector_is_undefined_not_a_counterexample():
    for lhs, rhs in [("softmax(z)[n]", "1"), ("max(z)", "z[k-1]"), ("max(z)", "z[k+1]")]:
        verdict = prove(lhs, rhs, relation="<=" if lhs.startswith("softmax") else ">=")
        assert verdict.status != REFUTED and not verdict.internal_error, (lhs, verdict.counterexample)


def test_a_partial_sum_is_not_taken_for_a_class_sum():
    """sum_{i <= n-2} p_i >= 1 is false for a distribution: refuted, never proved."""
    p = sp.IndexedBase("p", positive=True)
    verdict = prove(sp.Sum(p[sx.i], (sx.i, 0, sx.n - 2)), 1, relation=">=", assumptions=["p: distribution"])
    assert verdict.status == REFUTED and not verdict.internal_error


@pytest.mark.parametrize("lhs, rhs, assume", [("max(z)", "min(z)", ()), ("max(z)", "0", ()), ("exp(max(z))", "1", ()),
                                              ("max(w)", "0", ("w: weights",)), ("max(p)", "1/n", ("p: distribution",))])
def test_max_of_a_vector_used_nowhere_else_is_a_vector(lhs, rhs, assume):
    verdict = prove(lhs, rhs, relation=">=", assumptions=list(assume))
    assert verdict.status in (PROVED, REFUTED, UNKNOWN) and not verdict.internal_error
    if verdict.status == REFUTED:
        name = lhs.split("max(")[1][0]
        values = [_mp(v) for key, v in verdict.counterexample.items() if key.startswith(f"{name}[")]
        largest = max(values)
        assert abs(_mp(verdict.counterexample["lhs"]) - (mpmath.exp(largest) if lhs.startswith("exp") else largest)) \
            < mpmath.mpf(10) ** -40 * max(1, abs(_mp(verdict.counterexample["lhs"])))


def test_derive_renames_a_hand_written_sum_that_binds_the_free_index():
    z = sx.vector("z")
    result = gradient(sp.log(sp.Sum(sp.exp(z[sx.j]), (sx.j, 0, sx.n - 1))), z, sx.j).result
    assert prove(result, sx.softmax(z, sx.j)).status == PROVED


def test_a_tower_of_exponentials_ends_quickly():
    start = time.monotonic()
    assert prove("exp(exp(exp(x)))", "0", relation=">=").status == PROVED
    assert time.monotonic() - start < 30


def test_a_name_read_as_a_vector_on_one_side_and_a_scalar_on_the_other_is_an_error():
    """``kl(p, (p + q)/2)`` reads q as a scalar (the right operand of a vector sum): against ``js(p, q)``, where q
    is a distribution, the two sides would be about different q. An error naming q, never a verdict."""
    from symxent.prove.parse import FormulaError
    with pytest.raises(FormulaError, match="'q' is a vector in the lhs and a scalar in the rhs"):
        prove("js(p, q)", "kl(p, (p + q)/2)")
    assert prove("js(p, q)", "js(q, p)").status == "proved"
