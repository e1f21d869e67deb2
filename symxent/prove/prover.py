"""Decide ``lhs == rhs`` (or ``lhs >= rhs``) for the cross-entropy family, honestly.

:func:`prove` returns a :class:`Verdict`:

- ``proved``: shown symbolically for every number of classes ``n`` (or, for scalar claims, for
  every value of the symbols);
- ``proved_concrete``: shown symbolically for the concrete ``n`` given only;
- ``refuted``: a counterexample was found: numbers at which both sides, evaluated with mpmath at
  50 digits, clearly differ;
- ``unknown``: neither. A ``None`` from SymPy is never read as a proof: only an expression that
  reduces structurally to ``0`` (or a lemma applied step by step for ``>=``) counts.

Strategy, each stage recorded as :class:`Step` objects:

1. evaluate derivatives, rewrite sigmoid / softplus / log_sigmoid into ``exp`` / ``log``;
2. bring every ``Sum`` to a normal form (split over ``+``, index-free factors pulled out,
   ``KroneckerDelta`` sums evaluated, bound indices renamed canonically), apply constraints such as
   ``Sum(y[i]) = 1``, treat each remaining ``Sum`` as an atom (positive when its terms are);
3. expand logs of positive quantities and cancel; ``Max`` / ``Min`` / ``Abs`` / ``Piecewise`` are
   decided by splitting into the sign cases of their arguments;
4. for ``>=``: bound each ``w log u`` term with the lemma ``log x <= x - 1`` and show the bound is 0;
5. otherwise search for a counterexample at random points (``n = 2, 3, 5`` for symbolic ``n``);
6. for a given ``n``: the same symbolic steps on the concrete expression, for every value of the
   free class indices.

Free class indices (``k``, ``c`` in ``z[k]``, ``KroneckerDelta(k, c)``) are taken to lie in
``0..n-1``; the step that uses it says so.
"""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.concrete.delta import deltasummation
from sympy.core.relational import Relational

from ..definitions.functions import eliminate
from ..definitions.symbols import n as N_SYMBOL

PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN = "proved", "proved_concrete", "refuted", "unknown"
STATUSES = (PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN)
RELATIONS = ("==", ">=", "<=")
#: digits for the numeric evaluation of both sides
DIGITS = 50
#: numbers of classes tried by the counterexample search when n is symbolic
SEARCH_SIZES = (2, 3, 5)
#: random points per number of classes: three with |values| <= 3, two with 100 <= |values| <= 1000
SEARCH_KINDS = ("moderate", "moderate", "moderate", "large+", "large-")
SEARCH_POINTS = len(SEARCH_KINDS)
#: |lhs - rhs| above this times max(1, |lhs|, |rhs|) is "clearly nonzero"
RELATIVE_TOLERANCE = sp.Rational(1, 10**30)
#: expressions with more operations than this are not handed to ``simplify`` (too slow)
SIMPLIFY_OPS_LIMIT = 250
#: case splits over more sign atoms than this are not attempted
MAX_SIGN_ATOMS = 4
#: concrete proofs enumerate at most this many assignments of the free class indices
MAX_INDEX_CASES = 64


# --- verdicts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One step of a proof: what was done, and the expression it gave.

    ``relation`` links it to the previous step: ``=`` (equal), ``>=`` (a lower bound of it), or
    ``->`` (a new sub-goal: a sign case, a summand that must vanish).
    """

    explanation: str
    expr: sp.Basic
    relation: str = "="

    def to_dict(self) -> dict:
        return {"explanation": self.explanation, "expr": str(self.expr), "latex": sp.latex(self.expr),
                "relation": self.relation}


@dataclass
class Verdict:
    """The answer of :func:`prove`: status, method, time, steps and (if refuted) a counterexample."""

    status: str
    method: str
    seconds: float
    steps: list = field(default_factory=list)
    counterexample: Optional[dict] = None
    lhs: sp.Basic = None
    rhs: sp.Basic = None
    relation: str = "=="
    n: Optional[int] = None

    @property
    def proved(self) -> bool:
        return self.status in (PROVED, PROVED_CONCRETE)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "method": self.method,
            "seconds": self.seconds,
            "lhs": str(self.lhs),
            "rhs": str(self.rhs),
            "relation": self.relation,
            "n": self.n,
            "steps": [s.to_dict() for s in self.steps],
            "counterexample": self.counterexample,
        }

    def latex(self) -> str:
        r"""The proof as an ``aligned`` chain ``lhs - rhs &= ... \\ &= 0``, each step with its reason."""
        claim = rf"{sp.latex(self.lhs)} {_LATEX_RELATION[self.relation]} {sp.latex(self.rhs)}"
        lines = [rf"&\text{{claim: }} {claim}"]
        for step in self.steps:
            lines.append(rf"&{_LATEX_STEP[step.relation]} {sp.latex(step.expr)} "
                         rf"&& \text{{{_latex_text(step.explanation)}}}")
        verdict = f"{self.status}: {self.method}"
        if self.counterexample:
            point = ", ".join(f"{key} = {value}" for key, value in self.counterexample.items()
                              if key not in ("lhs", "rhs"))
            verdict += f"; at {point}: lhs = {self.counterexample['lhs'][:24]}, rhs = {self.counterexample['rhs'][:24]}"
        lines.append(rf"&\Rightarrow \text{{{_latex_text(verdict)}}}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


_LATEX_RELATION = {"==": "=", ">=": "\\ge", "<=": "\\le"}
_LATEX_STEP = {"=": "=", ">=": "\\ge", "->": "\\to"}


_TEXT_ESCAPES = {"\\": " ", "^": " ", "{": r"\{", "}": r"\}", "_": r"\_", "#": r"\#", "%": r"\%", "&": r"\&",
                 "$": r"\$"}


def _latex_text(text: str) -> str:
    """Plain text made safe inside ``\\text{...}``."""
    return "".join(_TEXT_ESCAPES.get(char, char) for char in text)


class _Trace:
    """Collects steps, skipping ones that did not change the expression."""

    def __init__(self):
        self.steps: list = []

    def add(self, explanation: str, expr, relation: str = "=") -> None:
        if relation == "=" and self.steps and self.steps[-1].expr == expr:
            return
        self.steps.append(Step(explanation, expr, relation))


# --- assumptions ------------------------------------------------------------------------------

@dataclass
class _Facts:
    """What the assumptions say: Sum constraints, sign facts, sampling bounds."""

    constraints: list = field(default_factory=list)  # (lhs, rhs) equalities
    lower: dict = field(default_factory=dict)  # symbol -> (bound, strict)
    upper: dict = field(default_factory=dict)

    @classmethod
    def from_assumptions(cls, assumptions: Iterable) -> "_Facts":
        facts = cls()
        for fact in _flatten_and(assumptions):
            if isinstance(fact, sp.Eq):
                facts._add_normalisation(fact)
            elif isinstance(fact, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)):
                facts._add_bound(fact)
            elif isinstance(fact, sp.assumptions.AppliedPredicate) and len(fact.arguments) == 1:
                facts._add_predicate(fact)
            else:
                raise ValueError(
                    f"unsupported assumption {fact!r}: use Eq(Sum(y[i], (i, 0, n - 1)), 1), bounds such as "
                    "x > 0, or Q.positive(x) / Q.nonnegative(x) / Q.negative(x)"
                )
        return facts

    def _add_normalisation(self, eq) -> None:
        """Only ``Sum(y[i], (i, 0, n - 1)) = 1`` is accepted: the search can sample such vectors, and a
        counterexample must respect every assumption."""
        the_sum, value = (eq.lhs, eq.rhs) if isinstance(eq.lhs, sp.Sum) else (eq.rhs, eq.lhs)
        if isinstance(the_sum, sp.Sum) and value == 1 and len(the_sum.limits) == 1:
            body, (index, low, high) = the_sum.function, the_sum.limits[0]
            if isinstance(body, sp.Indexed) and body.indices == (index,) and low == 0:
                self.constraints.append((the_sum, value))
                return
        raise ValueError(f"unsupported constraint {eq}: only Eq(Sum(y[i], (i, 0, n - 1)), 1) is understood")

    def _add_bound(self, rel) -> None:
        strict = isinstance(rel, (sp.StrictGreaterThan, sp.StrictLessThan))
        greater = isinstance(rel, (sp.StrictGreaterThan, sp.GreaterThan))
        big, small = (rel.lhs, rel.rhs) if greater else (rel.rhs, rel.lhs)
        if isinstance(big, sp.Symbol) and small.is_number:
            self.lower[big] = (small, strict)
        elif isinstance(small, sp.Symbol) and big.is_number:
            self.upper[small] = (big, strict)
        else:
            raise ValueError(f"unsupported bound {rel}: expected a symbol compared with a number")

    def _add_predicate(self, fact) -> None:
        (arg,) = fact.arguments
        if not isinstance(arg, sp.Symbol):
            raise ValueError(f"unsupported assumption {fact}: expected a predicate on a symbol")
        if fact.function == sp.Q.positive:
            self.lower[arg] = (sp.S.Zero, True)
        elif fact.function == sp.Q.nonnegative:
            self.lower[arg] = (sp.S.Zero, False)
        elif fact.function == sp.Q.negative:
            self.upper[arg] = (sp.S.Zero, True)
        else:
            raise ValueError(f"unsupported assumption {fact}: use Q.positive, Q.nonnegative or Q.negative")

    def renamed(self, replacements: dict) -> "_Facts":
        """The same facts about the replaced symbols."""
        return _Facts(
            [(lhs.xreplace(replacements), rhs.xreplace(replacements)) for lhs, rhs in self.constraints],
            {replacements.get(s, s): bound for s, bound in self.lower.items()},
            {replacements.get(s, s): bound for s, bound in self.upper.items()},
        )

    def sign_replacements(self) -> dict:
        """Symbols known positive (or nonnegative) by a bound, as symbols carrying that assumption."""
        out = {}
        for s, (bound, strict) in self.lower.items():
            if bound > 0 or (bound == 0 and strict):
                out[s] = sp.Symbol(s.name, positive=True)
            elif bound == 0:
                out[s] = sp.Symbol(s.name, nonnegative=True)
        for s, (bound, strict) in self.upper.items():
            if s not in out and (bound < 0 or (bound == 0 and strict)):
                out[s] = sp.Symbol(s.name, negative=True)
        return out

    def normalised_bases(self) -> set:
        """IndexedBases ``y`` with a constraint ``Sum(y[i], (i, 0, n - 1)) = 1``."""
        return {the_sum.function.base for the_sum, _ in self.constraints}


def _flatten_and(assumptions) -> list:
    if isinstance(assumptions, sp.Basic):
        assumptions = [assumptions]
    out = []
    for fact in assumptions:
        if isinstance(fact, sp.And):
            out.extend(_flatten_and(fact.args))
        elif fact is sp.true or fact is True:
            continue
        elif fact is sp.false or fact is False:
            raise ValueError("the assumptions are contradictory: one of them is False")
        else:
            out.append(fact)
    return out


# --- preparation ------------------------------------------------------------------------------

def _as_expr(value, name: str) -> sp.Expr:
    if isinstance(value, str):
        from .parse import parse_formula  # safe parser, no eval

        return parse_formula(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return sp.sympify(value)
    if not isinstance(value, sp.Expr):
        raise TypeError(f"{name}: expected a SymPy expression or a formula string, got {type(value).__name__} "
                        f"(pass the two sides of a relation separately)")
    return value


def _length_symbols(expr) -> set:
    """The symbolic number of classes in ``expr``: symxent's ``n`` (or an integer symbol named n)."""
    return {s for s in expr.free_symbols
            if s == N_SYMBOL or (isinstance(s, sp.Symbol) and s.name == "n" and s.is_integer)}


def _evaluate_derivatives(expr):
    return expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit(deep=False))


def _natural_domain(*exprs) -> dict:
    """Real variables that appear bare inside a ``log``, made positive: the logs are real only there.

    ``log(p[i])`` makes the vector ``p`` positive, ``log(x)`` the symbol ``x``. Returns the
    replacements (old -> same name, positive).
    """
    out = {}
    for expr in exprs:
        for lg in expr.atoms(sp.log):
            u = lg.args[0]
            if u.is_positive or not u.is_real:
                continue
            if isinstance(u, sp.Symbol):
                out[u] = sp.Symbol(u.name, positive=True)
            elif isinstance(u, sp.Indexed) and u.base not in out:
                out[u.base] = sp.IndexedBase(u.base.label, positive=True)
    return out


def _prepare(expr):
    """Derivatives evaluated; catalogue functions, ``log1p`` and ``expm1`` rewritten into exp/log."""
    expr = eliminate(_evaluate_derivatives(sp.sympify(expr)))
    return expr.replace(lambda e: isinstance(e, (log1p, expm1)),
                        lambda e: sp.log(1 + e.args[0]) if isinstance(e, log1p) else sp.exp(e.args[0]) - 1)


# --- Sum normal form --------------------------------------------------------------------------

_CANONICAL_INDICES: dict = {}


def _canonical_index(level: int) -> sp.Dummy:
    """The bound index used for Sums with ``level`` nested Sums inside: one per level."""
    if level not in _CANONICAL_INDICES:
        _CANONICAL_INDICES[level] = sp.Dummy(f"i{level}", integer=True)
    return _CANONICAL_INDICES[level]


def _sum_level(expr) -> int:
    return max((1 + _sum_level(s.function) for s in expr.atoms(sp.Sum)), default=0)


def normalise_sums(expr):
    """Every Sum split over ``+``, with index-free factors pulled out and Kronecker deltas summed.

    ``sum_i (a f_i + g_i) -> a sum_i f_i + sum_i g_i``; ``sum_i delta_{ik} f_i -> f_k`` (k in range);
    ``sum_i a -> (high - low + 1) a``; bound indices renamed so that equal sums are equal objects.
    """
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
        return expr
    if isinstance(expr, sp.Sum):
        body = normalise_sums(expr.function)
        for limit in expr.limits:
            body = _sum_over(body, limit)
        return body
    return expr.func(*[normalise_sums(a) for a in expr.args])


def _sum_over(body, limit):
    index, low, high = limit
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(body)):
        if not term.has(index):
            total += term * (high - low + 1)
            continue
        if _delta_in_range(term, index, low, high):
            summed = deltasummation(term, (index, low, high), no_piecewise=True)
            if not summed.has(index):
                total += normalise_sums(summed)
                continue
        coeff, dependent = term.as_independent(index, as_Add=False)
        canonical = _canonical_index(_sum_level(dependent))
        total += coeff * sp.Sum(dependent.xreplace({index: canonical}), (canonical, low, high))
    return total


def _delta_in_range(term, index, low, high) -> bool:
    """Whether ``term`` has a ``KroneckerDelta(index, m)`` with ``m`` in ``low..high``: a free class
    index (taken to lie in 0..n-1 for sums over 0..n-1) or a number known to lie in the range."""
    over_classes = low == 0 and (high + 1) in _length_symbols(high)  # the sum runs over 0..n-1
    for delta in term.atoms(sp.KroneckerDelta):
        if index not in delta.args:
            continue
        other = delta.args[1] if delta.args[0] == index else delta.args[0]
        if over_classes and isinstance(other, sp.Symbol) and other.is_integer and other != high + 1:
            return True
        if other.is_Integer and (other - low).is_nonnegative and (high - other).is_nonnegative:
            return True
    return False


def _merge_sums(expr):
    """``a sum_i f_i + b sum_i g_i -> sum_i (a f_i + b g_i)`` for sums with equal limits (a, b index-free)."""
    groups, rest = {}, sp.S.Zero
    for term in sp.Add.make_args(expr):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1:
            the_sum = sums[0]
            coeff = term / the_sum
            groups.setdefault(the_sum.limits, []).append(coeff * the_sum.function)
        else:
            rest += term
    merged = [sp.Sum(sp.Add(*bodies), *limits) for limits, bodies in groups.items()]
    return sp.Add(rest, *merged)


def _apply_constraints(expr, facts: _Facts, trace: Optional[_Trace] = None):
    """Replace a constrained Sum by its value: both in normal form, so bound names do not matter
    (the effect of matching with ``dummy_eq``)."""
    for lhs, rhs in facts.constraints:
        new = expr.xreplace({normalise_sums(lhs): rhs})
        if new != expr:
            expr = new
            if trace is not None:
                trace.add(f"constraint {sp.sstr(lhs)} = {sp.sstr(rhs)} applied", expr)
    return expr


def _atomise_sums(expr):
    """Each remaining Sum replaced by a symbol (positive when its terms are positive): (expr, back-map)."""
    forward, backward = {}, {}
    for s in sorted(expr.atoms(sp.Sum), key=sp.default_sort_key):
        body, (index, low, high) = s.function, s.limits[-1]
        nonempty = (high - low).is_nonnegative
        assumptions = {}
        if body.is_positive and nonempty:
            assumptions["positive"] = True
        elif body.is_nonnegative:
            assumptions["nonnegative"] = True
        elif body.is_real:
            assumptions["real"] = True
        atom = sp.Dummy("S", **assumptions)
        forward[s], backward[atom] = atom, s
    # xreplace works top-down: an outer sum is replaced whole, its inner sums with it
    return expr.xreplace(forward), backward


# --- deciding zero ----------------------------------------------------------------------------

def _reduces_to_zero(expr, trace: _Trace, back: dict) -> bool:
    """True only when ``expr`` reduces structurally to 0 by sound rewrites."""
    expanded = sp.expand(sp.expand_log(expr, deep=True))
    trace.add("logs of positive quantities expanded, exponentials split, products expanded", expanded.xreplace(back))
    if expanded == 0:
        return True
    cancelled = sp.cancel(sp.together(expanded))
    trace.add("brought to one fraction and cancelled", cancelled.xreplace(back))
    if cancelled == 0:
        return True
    if sp.count_ops(cancelled) <= SIMPLIFY_OPS_LIMIT:
        simplified = sp.simplify(cancelled)
        trace.add("simplified", simplified.xreplace(back))
        if simplified == 0:
            return True
    return False


_SIGN_FUNCTIONS = (sp.Abs, sp.sign, sp.Heaviside)


def _sign_atoms(expr) -> list:
    """The quantities whose sign decides the Max/Min/Abs/Piecewise in ``expr`` (up to sign)."""
    atoms = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _SIGN_FUNCTIONS):
            atoms.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
            atoms.append(node.args[0] - node.args[1])
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                relations = [cond] if isinstance(cond, Relational) else cond.atoms(Relational)
                atoms.extend(rel.lhs - rel.rhs for rel in relations)
    unique = []
    for a in atoms:
        a = -a if a.could_extract_minus_sign() else a
        if a not in unique and not a.is_number:
            unique.append(a)
    return unique


def _sign_cases(atoms: list):
    """Assignments covering all signs of the atoms (each atom a real symbol or Indexed): x > 0, x < 0, x = 0."""
    choices = []
    for a in atoms:
        positive = sp.Dummy(f"{a}", positive=True)
        choices.append([(a, positive, f"{a} > 0"), (a, -positive, f"{a} < 0"), (a, sp.S.Zero, f"{a} = 0")])
    for combo in itertools.product(*choices):
        yield {a: value for a, value, _ in combo}, ", ".join(text for *_, text in combo)


def _decide_equal(expr, trace: _Trace, back: dict) -> tuple:
    """(proved, method) for ``expr == 0`` with Sums already atomised."""
    atoms = _sign_atoms(expr)
    if not atoms:
        return _reduces_to_zero(expr, trace, back), "symbolic simplification"
    if len(atoms) > MAX_SIGN_ATOMS or not all(a.is_real and isinstance(a, (sp.Symbol, sp.Indexed)) for a in atoms):
        trace.add("no case split: the signs depend on compound or too many quantities", expr.xreplace(back))
        return _reduces_to_zero(expr, trace, back), "symbolic simplification"
    for values, text in _sign_cases(atoms):
        case = expr.xreplace(values)
        trace.add(f"case {text}", case.xreplace(back), "->")
        if not _reduces_to_zero(case, trace, back):
            trace.add(f"case {text} not shown", case.xreplace(back), "->")
            return False, "case split"
    return True, f"case split on the sign of {', '.join(map(str, atoms))}"


def _symbolic_equal(difference, facts: _Facts, trace: _Trace) -> tuple:
    """Try to show ``difference == 0`` symbolically; returns (proved, method).

    First with every Sum an atom; then with the Sums of equal limits combined, showing the
    combined summand is 0 for every index (termwise). Only the successful attempt's steps are kept.
    """
    expr = normalise_sums(difference)
    trace.add("sums normalised (split over +, index-free factors pulled out, delta sums taken with "
              "class indices in 0..n-1)", expr)
    expr = _apply_constraints(expr, facts, trace)
    attempt = _Trace()
    atomised, back = _atomise_sums(expr)
    ok, method = _decide_equal(atomised, attempt, back)
    if ok or not expr.has(sp.Sum):
        trace.steps.extend(attempt.steps)
        return ok, method
    termwise = _Trace()
    ok, method_termwise = _decide_termwise(expr, termwise)
    trace.steps.extend(termwise.steps if ok else attempt.steps + termwise.steps)
    return (True, method_termwise) if ok else (False, method)


def _decide_termwise(expr, trace: _Trace) -> tuple:
    """``sum_i f_i - sum_i g_i + rest = 0`` from ``f_i - g_i = 0`` for every i and ``rest = 0``."""
    merged = _merge_sums(expr)
    trace.add("sums with equal limits combined", merged)
    method = "summands equal termwise"
    for term in sp.Add.make_args(merged):
        if isinstance(term, sp.Sum):
            trace.add(f"summand of the sum over {term.limits[0][0]} must be 0", term.function, "->")
            atomised, back = _atomise_sums(term.function)
            ok, how = _decide_equal(atomised, trace, back)
        else:
            continue
        if not ok:
            return False, method
        if how.startswith("case split"):
            method += f" ({how})"
    rest = sp.Add(*[term for term in sp.Add.make_args(merged) if not isinstance(term, sp.Sum)])
    if rest != 0:
        trace.add("the terms outside the sums must be 0", rest, "->")
        atomised, back = _atomise_sums(rest)
        ok, _ = _decide_equal(atomised, trace, back)
        if not ok:
            return False, method
    return True, method


# --- inequalities: the lemma log x <= x - 1 ---------------------------------------------------

def _log_lemma_bound(summand):
    """A lower bound of ``summand`` from ``log x <= x - 1`` (x > 0), or None if no term applies.

    Log terms are first grouped by their weight: ``w log u - w log v = w log(u / v)``. Then
    ``w log u >= w (1 - 1/u)`` for ``w > 0`` and ``w log u >= w (u - 1)`` for ``w < 0``.
    """
    groups, rest = {}, sp.S.Zero
    for term in sp.Add.make_args(sp.expand(summand)):
        logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
        if len(logs) != 1 or not logs[0].args[0].is_positive:
            rest += term
            continue
        weight = term / logs[0]
        sign = -1 if weight.could_extract_minus_sign() else 1
        groups.setdefault(sign * weight, []).append((sign, logs[0].args[0]))
    if not groups:
        return None
    bound = rest
    for weight, parts in groups.items():
        ratio = sp.Mul(*[u**s for s, u in parts])
        if weight.is_positive:
            bound += weight * (1 - 1 / ratio)
        elif weight.is_negative:
            bound += weight * (ratio - 1)
        else:
            return None
    return bound


def _symbolic_nonnegative(difference, facts: _Facts, trace: _Trace) -> tuple:
    """Try to show ``difference >= 0``; returns (proved, method)."""
    expr = normalise_sums(difference)
    trace.add("sums normalised", expr)
    expr = _apply_constraints(expr, facts, trace)
    if expr.is_nonnegative:
        return True, "sign of the terms"
    merged = _merge_sums(expr)
    trace.add("sums with equal limits combined", merged)
    bound = sp.S.Zero
    for term in sp.Add.make_args(merged):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1 and (term / sums[0]).is_positive:
            inner = _log_lemma_bound(sums[0].function)
            bound += term if inner is None else (term / sums[0]) * sp.Sum(inner, *sums[0].limits)
        else:
            inner = _log_lemma_bound(term)
            bound += term if inner is None else inner
    trace.add("each w log u bounded below with log x <= x - 1 (x > 0); a sum of lower bounds "
              "is a lower bound", bound, ">=")
    bound = _apply_constraints(normalise_sums(bound), facts, trace)
    atomised, back = _atomise_sums(bound)
    simplified = sp.cancel(sp.expand(atomised))
    trace.add("lower bound simplified", simplified.xreplace(back))
    if simplified == 0 or simplified.is_nonnegative:
        return True, "lemma log x <= x - 1"
    return False, "lemma log x <= x - 1"


# --- concrete n -------------------------------------------------------------------------------

def _class_index_symbols(expr) -> list:
    """Free integer symbols other than n: the class indices (k, c, ...)."""
    return sorted(
        (s for s in expr.free_symbols
         if isinstance(s, sp.Symbol) and s.is_integer and s not in _length_symbols(expr)),
        key=sp.default_sort_key,
    )


def _instantiate(expr, values: dict):
    """Substitute numbers for n and class indices, then expand the now-finite Sums."""
    return expr.xreplace({k: sp.sympify(v) for k, v in values.items()}).doit()


def _concrete_constraints(facts: _Facts, size: int, lengths: set) -> dict:
    """Solve each concrete Sum constraint for its last unknown: ``y[n-1] = 1 - y[0] - ...``."""
    solution = {}
    for lhs, rhs in facts.constraints:
        equation = (_instantiate(lhs, {s: size for s in lengths | _length_symbols(lhs)})
                    - _instantiate(rhs, {s: size for s in lengths | _length_symbols(rhs)}))
        unknowns = sorted(equation.atoms(sp.Indexed), key=sp.default_sort_key)
        for unknown in reversed(unknowns):
            coeff = equation.diff(unknown)
            if coeff != 0 and not coeff.has(unknown) and unknown not in solution:
                solution[unknown] = sp.expand(unknown - equation / coeff)
                break
    return solution


def _symbolic_concrete(difference, size: int, facts: _Facts, trace: _Trace, relation: str) -> tuple:
    lengths = _length_symbols(difference)
    solution = _concrete_constraints(facts, size, lengths)
    indices = _class_index_symbols(difference)
    cases = list(itertools.product(range(size), repeat=len(indices)))
    if len(cases) > MAX_INDEX_CASES:
        trace.add(f"too many class-index cases ({len(cases)}) for a concrete proof", difference)
        return False, f"symbolic, n = {size}"
    for values in cases:
        assignment = dict(zip(indices, values))
        expr = _instantiate(difference, {**{s: size for s in lengths}, **assignment})
        expr = expr.xreplace(solution)
        label = ", ".join(f"{s} = {v}" for s, v in assignment.items())
        trace.add(f"n = {size}{', ' + label if label else ''}: sums written out"
                  f"{', constraints solved' if solution else ''}", expr, "->")
        if relation == "==":
            ok, _ = _decide_equal(expr, trace, {})
        else:
            ok, _ = _symbolic_nonnegative(expr, facts, trace)
        if not ok:
            return False, f"symbolic, n = {size}"
    return True, f"symbolic, n = {size}" + (f", every value of {', '.join(map(str, indices))}" if indices else "")


# --- counterexample search --------------------------------------------------------------------

def _short_decimal(numerator: int, denominator: int) -> str:
    sign = "-" if numerator < 0 else ""
    whole, frac = divmod(abs(numerator), denominator)
    width = len(str(denominator)) - 1
    return f"{sign}{whole}" + (f".{frac:0{width}d}" if width else "")


class _Sampler:
    """Random exact decimal values respecting signs, bounds and Sum = 1 constraints.

    ``kind`` is ``moderate`` (|v| <= 3, two decimals) or ``large+`` / ``large-`` (integers with
    100 <= |v| <= 1000, where overflow, clamps and cancellation show).
    """

    def __init__(self, facts: _Facts, rng: random.Random):
        self.facts, self.rng = facts, rng
        self.normalised = facts.normalised_bases()

    def _draw(self, kind: str, positive=False, nonnegative=False, negative=False, bounds=None) -> tuple:
        if bounds is not None:
            (low, low_strict), (high, high_strict) = bounds
            lo = int(sp.ceiling(low * 100)) + (1 if low_strict and (low * 100).is_integer else 0)
            hi = int(sp.floor(high * 100)) - (1 if high_strict and (high * 100).is_integer else 0)
            if lo > hi:
                raise ValueError("the assumptions leave no value to sample")
            return self._pick(self.rng.randint(lo, hi), 100)
        if kind == "large+" and not negative:
            return self._pick(self.rng.randint(100, 1000), 1)
        if kind == "large-" and not (positive or nonnegative):
            return self._pick(-self.rng.randint(100, 1000), 1)
        low = 1 if positive else 0 if nonnegative else -300
        high = -1 if negative else 300
        return self._pick(self.rng.randint(low, high), 100)

    def scalar(self, s: sp.Symbol, kind: str) -> tuple:
        lower, upper = self.facts.lower.get(s), self.facts.upper.get(s)
        bounds = None
        if lower is not None or upper is not None:
            default_low = ((sp.S.Zero, True) if s.is_positive
                           else (sp.S.Zero, False) if s.is_nonnegative else (sp.Integer(-3), False))
            bounds = (lower or default_low, upper or ((sp.S.Zero, True) if s.is_negative else (lower[0] + 3, False)))
        return self._draw(kind, bool(s.is_positive), bool(s.is_nonnegative), bool(s.is_negative), bounds)

    def vector(self, base: sp.IndexedBase, positions: list, size: int, kind: str) -> dict:
        if base in self.normalised:
            cuts = sorted(self.rng.sample(range(1, 100), size - 1)) if size > 1 else []
            parts = [high - low for low, high in zip([0] + cuts, cuts + [100])]
            return {pos: self._pick(parts[pos], 100) for pos in positions if 0 <= pos < size}
        probe = sp.Indexed(base, 0)
        signs = bool(probe.is_positive), bool(probe.is_nonnegative), bool(probe.is_negative)
        return {pos: self._draw(kind, *signs) for pos in positions}

    @staticmethod
    def _pick(numerator: int, denominator: int) -> tuple:
        return sp.Rational(numerator, denominator), _short_decimal(numerator, denominator)


def _numeric(expr) -> Optional[mpmath.mpf]:
    """``expr`` (a constant) at 50 digits; None where it is undefined, infinite or not real."""
    value = sp.N(expr, DIGITS)
    if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    try:
        with mpmath.workdps(DIGITS):
            number = mpmath.mpmathify(value._to_mpmath(mpmath.mp.prec))
    except (TypeError, ValueError, AttributeError):
        return None
    if isinstance(number, mpmath.mpc):
        if abs(number.imag) > mpmath.mpf(10) ** (-DIGITS + 10) * max(1, abs(number)):
            return None
        number = number.real
    return number if mpmath.isfinite(number) else None


def _violates(left, right, relation: str) -> bool:
    """Whether the real numbers break ``left relation right`` by more than the tolerance."""
    with mpmath.workdps(DIGITS):
        tolerance = mpmath.mpf(RELATIVE_TOLERANCE.p) / RELATIVE_TOLERANCE.q * max(1, abs(left), abs(right))
        gap = left - right
        if relation == "==":
            return abs(gap) > tolerance
        return gap < -tolerance if relation == ">=" else gap > tolerance


def _format(value) -> str:
    with mpmath.workdps(DIGITS):
        return mpmath.nstr(value, DIGITS)


def _search_counterexample(lhs, rhs, facts: _Facts, sizes, relation: str, seed: int = 0) -> Optional[tuple]:
    """A random point at which the sides clearly differ (or break the inequality), as
    (values and both sides as strings, lhs - rhs); None if none was found."""
    rng = random.Random(seed)
    sampler = _Sampler(facts, rng)
    both = sp.Add(lhs, rhs, evaluate=False)
    lengths = _length_symbols(both)
    indices = _class_index_symbols(both)
    for size in sizes:
        for kind in SEARCH_KINDS:
            shown, values = {}, {}
            if size is not None:
                for s in lengths:
                    values[s], shown[str(s)] = sp.Integer(size), str(size)
            for s in indices:
                m = rng.randrange(size) if size is not None else rng.randrange(4)
                values[s], shown[str(s)] = sp.Integer(m), str(m)
            try:
                left, right = _instantiate(lhs, values), _instantiate(rhs, values)
            except (TypeError, ValueError, IndexError):
                continue
            numbers = _sample_free(left, right, sampler, size, kind, shown)
            if numbers is None:
                continue
            try:  # a point where SymPy cannot build or compare the numbers tells nothing: skip it
                lv, rv = _numeric(left.xreplace(numbers)), _numeric(right.xreplace(numbers))
            except (ValueError, TypeError, ArithmeticError):
                continue
            if lv is None or rv is None or not _violates(lv, rv, relation):
                continue  # no difference here, or a side is undefined or not real (outside the domain)
            shown["lhs"], shown["rhs"] = _format(lv), _format(rv)
            return shown, lv - rv
    return None


def _sample_free(left, right, sampler: _Sampler, size, kind: str, shown: dict) -> Optional[dict]:
    both = sp.Add(left, right, evaluate=False)
    indexed = sorted(both.atoms(sp.Indexed), key=sp.default_sort_key)
    labels = {x.base.label for x in indexed}
    numbers = {}
    by_base: dict = {}
    for x in indexed:
        if len(x.indices) != 1 or not x.indices[0].is_Integer:
            return None
        by_base.setdefault(x.base, []).append(int(x.indices[0]))
    for base, positions in by_base.items():
        width = size if size is not None else max(positions) + 1
        for pos, (value, text) in sampler.vector(base, positions, width, kind).items():
            numbers[sp.Indexed(base, pos)] = value
            shown[f"{base}[{pos}]"] = text
    for s in sorted(both.free_symbols, key=sp.default_sort_key):
        if isinstance(s, sp.Symbol) and s not in labels:
            numbers[s], shown[str(s)] = sampler.scalar(s, kind)
    return numbers


# --- the prover -------------------------------------------------------------------------------

def prove(lhs, rhs, assumptions=(), n: Optional[int] = None, relation: str = "==") -> Verdict:
    """Decide ``lhs relation rhs`` (``==``, ``>=`` or ``<=``) and say how.

    ``assumptions``: ``Eq(Sum(y[i], (i, 0, n - 1)), 1)`` style constraints, bounds such as
    ``eps > 0`` / ``eps < 1``, or ``Q.positive(x)``. ``n=None``: for every number of classes;
    ``n=3``: for three classes only (``proved_concrete``).
    """
    start = time.perf_counter()
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer (the number of classes) or None, got {n!r}")
    lhs, rhs = _as_expr(lhs, "lhs"), _as_expr(rhs, "rhs")
    facts = _Facts.from_assumptions(assumptions)
    signs = facts.sign_replacements()
    facts = facts.renamed(signs)
    trace = _Trace()

    def verdict(status, method, counterexample=None):
        return Verdict(status, method, time.perf_counter() - start, trace.steps, counterexample,
                       lhs, rhs, relation, n)

    left, right = _prepare(lhs).xreplace(signs), _prepare(rhs).xreplace(signs)
    domain = _natural_domain(left, right)
    left, right, facts = left.xreplace(domain), right.xreplace(domain), facts.renamed(domain)
    trace.add("difference of the sides" if relation == "==" else "difference that must be >= 0",
              lhs - rhs if relation != "<=" else rhs - lhs)
    if domain:
        trace.add(f"natural domain: {', '.join(f'{v} > 0' for v in domain)} (the logs are real only there)",
                  lhs - rhs if relation != "<=" else rhs - lhs, "->")
    difference = left - right if relation != "<=" else right - left
    trace.add("derivatives evaluated; sigmoid, softplus, log_sigmoid, log1p, expm1 written with exp and log",
              difference)
    symbolic_n = bool(_length_symbols(left) | _length_symbols(right))

    general = n is None or not symbolic_n
    try:
        if general:
            decide = _symbolic_equal if relation == "==" else _symbolic_nonnegative
            ok, method = decide(difference, facts, trace)
        else:
            ok, method = _symbolic_concrete(difference, n, facts, trace, relation)
    except Exception as exc:  # a failing SymPy routine proves nothing: record it and go on
        ok, method = False, "symbolic"
        trace.add(f"symbolic steps stopped: {type(exc).__name__}: {exc}", difference)
    if ok:
        if general:
            return verdict(PROVED, method + (" for every n" if symbolic_n else ""))
        return verdict(PROVED_CONCRETE, method)
    sizes = (SEARCH_SIZES if symbolic_n else (None,)) if general else (n,)

    found = _search_counterexample(left, right, facts, sizes, relation)
    if found is not None:
        counterexample, gap = found
        trace.add("lhs - rhs at the counterexample found by the numeric search (mpmath, 50 digits)",
                  sp.Float(mpmath.nstr(gap, DIGITS), DIGITS), "->")
        return verdict(REFUTED, "numeric counterexample", counterexample)
    trace.add(f"no counterexample at {len(sizes) * SEARCH_POINTS} random points; not proved", difference, "->")
    return verdict(UNKNOWN, "none: symbolic steps did not reach 0, numeric search found no counterexample")
