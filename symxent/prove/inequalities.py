"""Inequalities: show ``D >= 0`` by sound bounds, each step recorded.

Tactics, tried in order on ``D`` (and again on each sign case of a ``Max`` / ``Min`` / ``Abs``, or of a
real scalar):

1. **ranges**: an interval for every subexpression (:func:`bounds`: domains of the variables, ``exp > 0``,
   a log of something in (0, 1] is <= 0, a sum of terms >= 0 is >= 0, ...); ``D``'s lower end >= 0;
2. **termwise**: ``D`` a sum of terms each >= 0, a class-axis sum when its summand is >= 0 for every
   class (the summand's index then lies in 0..n-1 like any free index);
3. **one log**: ``sum_i c_i log u_i + r = log(prod u_i^c_i e^r)``, >= 0 when the product is >= 1;
4. **a positive sum and its terms**: where ``D`` grows with a sum ``S = sum_j f_j`` of terms >= 0,
   ``S`` may be replaced by one of its terms (at a free class index, or at the largest element
   ``max(z)``); where ``D`` falls as ``S`` grows, by ``n`` times its largest term;
5. **absorb and the lemma** ``log x <= x - 1``: a constant ``c`` is ``c * sum_i p_i`` for a distribution
   ``p`` (or ``c r + c (1 - r)``), then each ``w log u >= w (1 - 1/u)``.

Every tactic only ever replaces ``D`` by something no larger (or splits it into cases that cover all
values), so a lower bound shown ``>= 0`` proves the claim; the numeric cross-examination of
``prover.py`` checks the verdict independently.
"""
from __future__ import annotations

import itertools
from typing import Optional

import sympy as sp

from ..definitions.softmax import vector_max, vector_min
from .limits import guarded_expand

oo = sp.oo

#: recursion depth of the tactics (a summand's proof may itself use them)
MAX_DEPTH = 3


# --- ranges ------------------------------------------------------------------------------------

def _number(value, default):
    """``value`` if it is a real number or +-oo, else ``default`` (a symbolic bound is no bound)."""
    value = sp.sympify(value)
    if value in (oo, -oo) or (value.is_number and value.is_real):
        return value
    return default


def _le(a, b) -> bool:
    """``a <= b`` for numbers or infinities, False when undecided."""
    try:
        result = sp.sympify(a) <= sp.sympify(b)
    except TypeError:
        return False
    return result is sp.true


def _atom_bounds(expr, domains: dict) -> tuple:
    """The interval of a symbol, a vector element or ``max(z)`` from its domain and assumptions."""
    key = expr.base if isinstance(expr, sp.Indexed) else expr.args[0] if isinstance(expr, (vector_max, vector_min)) \
        else expr
    domain = domains.get(key)
    lo = domain.lower if domain is not None and domain.lower is not None else -oo
    hi = domain.upper if domain is not None and domain.upper is not None else oo
    probe = expr
    if probe.is_nonnegative or probe.is_positive:
        lo = lo if _le(0, lo) else sp.S.Zero
    if probe.is_nonpositive or probe.is_negative:
        hi = hi if _le(hi, 0) else sp.S.Zero
    if getattr(expr, "is_integer", False) and expr.is_positive:
        lo = lo if _le(1, lo) else sp.S.One
    return lo, hi


def _mul(a: tuple, b: tuple) -> tuple:
    if (a[0] == 0 and a[1] == 0) or (b[0] == 0 and b[1] == 0):
        return sp.S.Zero, sp.S.Zero
    products = []
    for x, y in itertools.product(a, b):
        if (x == 0 and y in (oo, -oo)) or (y == 0 and x in (oo, -oo)):
            products.append(sp.S.Zero)
        else:
            products.append(x * y)
    return min(products, key=_key), max(products, key=_key)


def _key(value):
    return float(value) if value not in (oo, -oo) else (float("inf") if value == oo else float("-inf"))


def _power(base: tuple, exponent) -> tuple:
    lo, hi = base
    if exponent.is_Integer:
        k = int(exponent)
        if k == 0:
            return sp.S.One, sp.S.One
        if k > 0:
            if k % 2 == 1 or _le(0, lo):
                return lo ** k if lo != -oo else -oo if k % 2 else oo, hi ** k if hi != oo else oo
            if _le(hi, 0):
                return hi ** k, lo ** k if lo != -oo else oo
            return sp.S.Zero, max(lo ** k if lo != -oo else oo, hi ** k if hi != oo else oo, key=_key)
        if _le(0, lo):  # a negative power of something >= 0: >= 0 (where defined), unbounded near 0
            return (sp.S.Zero if hi == oo or hi == 0 else hi ** k), (oo if lo == 0 else lo ** k)
        if _le(hi, 0) and k % 2 == 0:
            return (sp.S.Zero if lo == -oo or lo == 0 else lo ** k), (oo if hi == 0 else hi ** k)
        return -oo, oo
    if exponent.is_Rational and _le(0, lo):
        if exponent > 0:
            return lo ** exponent, (hi ** exponent if hi != oo else oo)
        return (sp.S.Zero if hi == oo or hi == 0 else hi ** exponent), (oo if lo == 0 else lo ** exponent)
    return -oo, oo


def bounds(expr, domains: dict, ranges: Optional[dict] = None) -> tuple:
    """A closed interval ``(lo, hi)`` (numbers or +-oo) containing every value of ``expr``.

    ``domains``: variable -> Domain; ``ranges``: bounds of summation indices in scope."""
    ranges = ranges or {}
    lo, hi = _bounds(sp.sympify(expr), domains, ranges)
    return _number(lo, -oo), _number(hi, oo)


def _bounds(e, domains, ranges) -> tuple:
    if e.is_number:
        if e.is_real:
            return e, e
        return -oo, oo
    if e in ranges:
        return ranges[e]
    if isinstance(e, (sp.Symbol, sp.Indexed, vector_max, vector_min)):
        lo, hi = _atom_bounds(e, domains)
        return _number(lo, -oo), _number(hi, oo)
    if isinstance(e, sp.Add):
        parts = [_bounds(a, domains, ranges) for a in e.args]
        lo = -oo if any(p[0] == -oo for p in parts) else sp.Add(*(p[0] for p in parts))
        hi = oo if any(p[1] == oo for p in parts) else sp.Add(*(p[1] for p in parts))
        return lo, hi
    if isinstance(e, sp.Mul):
        result = (sp.S.One, sp.S.One)
        for a in e.args:
            result = _mul(result, _bounds(a, domains, ranges))
        return result
    if isinstance(e, sp.Pow):
        if e.base is sp.E:
            lo, hi = _bounds(e.exp, domains, ranges)
            return (sp.S.Zero if lo == -oo else sp.exp(lo)), (oo if hi == oo else sp.exp(hi))
        if e.exp.is_number:
            return _power(_bounds(e.base, domains, ranges), e.exp)
        base = _bounds(e.base, domains, ranges)
        return (sp.S.Zero, oo) if _le(0, base[0]) and base[0] != 0 else (-oo, oo)
    if isinstance(e, sp.exp):
        lo, hi = _bounds(e.args[0], domains, ranges)
        return (sp.S.Zero if lo == -oo else sp.exp(lo)), (oo if hi == oo else sp.exp(hi))
    if isinstance(e, sp.log):
        lo, hi = _bounds(e.args[0], domains, ranges)
        if not _le(0, lo):
            return -oo, oo
        return (-oo if lo == 0 else sp.log(lo)), (oo if hi == oo else sp.log(hi))
    if isinstance(e, sp.Sum):
        return _sum_bounds(e, domains, ranges)
    if isinstance(e, sp.KroneckerDelta):
        return sp.S.Zero, sp.S.One
    if isinstance(e, (sp.Max, sp.Min)):
        parts = [_bounds(a, domains, ranges) for a in e.args]
        pick = max if isinstance(e, sp.Max) else min
        return pick((p[0] for p in parts), key=_key), pick((p[1] for p in parts), key=_key)
    if isinstance(e, sp.Abs):
        lo, hi = _bounds(e.args[0], domains, ranges)
        if _le(0, lo):
            return lo, hi
        if _le(hi, 0):
            return -hi, -lo
        return sp.S.Zero, max(-lo, hi, key=_key)
    if isinstance(e, sp.tanh):
        return -sp.S.One, sp.S.One
    return -oo, oo


def _sum_bounds(e, domains, ranges) -> tuple:
    (index, low, high), = e.limits[-1:]
    inner = dict(ranges)
    inner[index] = (_number(low, -oo), _number(high, oo))
    body = sp.Sum(e.function, *e.limits[:-1]) if len(e.limits) > 1 else e.function
    lo, hi = _bounds(body, domains, inner)
    count = high - low + 1
    if count.is_number:
        return (lo * count if lo != -oo else -oo), (hi * count if hi != oo else oo)
    nonempty = count.is_positive
    out_lo = (lo if nonempty and _le(0, lo) else sp.S.Zero) if _le(0, lo) else -oo
    out_hi = (hi if nonempty and _le(hi, 0) else sp.S.Zero) if _le(hi, 0) else oo
    return out_lo, out_hi


def nonnegative_by_ranges(expr, domains: dict, ranges: Optional[dict] = None) -> bool:
    """Whether the interval of ``expr`` lies in [0, oo)."""
    return _le(0, bounds(expr, domains, ranges)[0])


# --- the tactics -------------------------------------------------------------------------------

class Prover:
    """``D >= 0`` by the tactics of the module docstring; ``trace`` records the steps."""

    def __init__(self, facts, trace, index_ranges=None):
        """``index_ranges``: each free class index (and each summation index in scope) with its range
        ``(low, high)``; a sum's term at an index is used only when the index lies in the sum's range."""
        self.facts, self.trace = facts, trace
        self.domains = facts.domains
        self.index_ranges = dict(index_ranges or {})

    def nonnegative(self, expr, depth: int = 0, ranges: Optional[dict] = None, note: str = "") -> Optional[str]:
        """The name of the tactic that showed ``expr >= 0``, or None."""
        ranges = dict(ranges or {})
        if expr == 0 or nonnegative_by_ranges(expr, self.domains, ranges):
            return "ranges of the terms"
        if depth >= MAX_DEPTH:
            return None
        for tactic in (self.termwise, self.one_log, self.sum_by_its_terms, self.extreme_by_its_elements):
            how = tactic(expr, depth, ranges)
            if how:
                return how
        return None

    def _simple(self, expr, ranges) -> bool:
        """``expr >= 0`` after logs are expanded and terms cancelled (ranges of what is left)."""
        try:
            simplified = sp.cancel(guarded_expand(sp.expand_log(expr, force=False)))
        except (sp.PolynomialError, ValueError):
            simplified = expr
        if simplified == 0 or nonnegative_by_ranges(simplified, self.domains, ranges):
            return True
        if sp.count_ops(simplified) <= 150:
            simplified = sp.simplify(simplified)
            return simplified == 0 or nonnegative_by_ranges(simplified, self.domains, ranges)
        return False

    # 2. a sum of terms >= 0

    def termwise(self, expr, depth, ranges) -> Optional[str]:
        terms = sp.Add.make_args(expr)
        if len(terms) == 1 and not isinstance(expr, (sp.Sum, sp.Mul)):
            return None
        for term in terms:
            if not self._term_nonnegative(term, depth, ranges):
                return None
        self.trace.add("each term >= 0 (a sum over classes: its summand >= 0 for every class)", expr, "->")
        return "each term >= 0"

    def _term_nonnegative(self, term, depth, ranges) -> bool:
        if nonnegative_by_ranges(term, self.domains, ranges):
            return True
        factors = sp.Mul.make_args(term)
        sums = [f for f in factors if isinstance(f, sp.Sum) and len(f.limits) == 1]
        rest = sp.Mul(*[f for f in factors if f not in sums])
        if len(sums) == 1 and nonnegative_by_ranges(rest, self.domains, ranges):
            (index, low, high), = sums[0].limits
            inner = {**ranges, index: (_number(low, -oo), _number(high, oo))}
            summand = sums[0].function
            scope = (index, (low, high))
            return self._factor_nonnegative(summand, depth, inner, scope) or \
                self._grouped_nonnegative(summand, depth, inner, scope)
        if len(factors) > 1:
            return self._factor_nonnegative(term, depth, ranges, None)
        return self.nonnegative(term, depth + 1, ranges) is not None

    def _grouped_nonnegative(self, summand, depth, ranges, scope) -> bool:
        """A summand ``sum_v v_i g_v`` grouped by the vector elements ``v_i >= 0`` at its index: each
        ``v_i g_v >= 0`` (``p_i (log 2 - log(2 p_i / (p_i + q_i))) + q_i (...)`` for Jensen-Shannon)."""
        index = scope[0]
        weights = sorted({x for x in summand.atoms(sp.Indexed) if x.indices == (index,)
                          and nonnegative_by_ranges(x, self.domains, ranges)}, key=sp.default_sort_key)
        if not weights:
            return False
        collected = sp.collect(sp.expand(summand, log=False), weights, evaluate=False)
        if sp.S.One in collected and collected[sp.S.One] != 0:
            return False
        return all(self._factor_nonnegative(weight * sp.factor_terms(coeff), depth, ranges, scope)
                   for weight, coeff in collected.items())

    def _factor_nonnegative(self, product, depth, ranges, scope) -> bool:
        """A product >= 0: factors known >= 0 set aside, the rest shown >= 0."""
        known, rest = [], []
        for f in sp.Mul.make_args(product):
            (known if nonnegative_by_ranges(f, self.domains, ranges) else rest).append(f)
        remainder = sp.Mul(*rest)
        if not rest:
            return True
        index_ranges = dict(self.index_ranges)
        if scope is not None:
            index_ranges[scope[0]] = scope[1]
        return Prover(self.facts, self.trace, index_ranges).nonnegative(remainder, depth + 1, ranges) is not None

    # 3. one log

    def one_log(self, expr, depth, ranges) -> Optional[str]:
        """``sum c_i log u_i + r >= 0`` from ``prod u_i^c_i * exp(r) >= 1`` (c_i rational)."""
        logs, rest = [], sp.S.Zero
        for term in sp.Add.make_args(sp.expand(expr)):
            coeff, factors = term.as_coeff_mul()
            lg = [f for f in factors if isinstance(f, sp.log)]
            if len(lg) == 1 and len(factors) == 1:
                logs.append((coeff, lg[0].args[0]))
            else:
                rest += term
        if not logs or rest.has(sp.log) or rest.has(sp.Sum):
            return None
        argument = sp.exp(rest) * sp.Mul(*(u ** c for c, u in logs))
        candidates = [argument, sp.powsimp(sp.expand(argument)), sp.expand(sp.powsimp(argument, combine="exp"))]
        for candidate in candidates:
            lo = bounds(candidate - 1, self.domains, ranges)[0]
            if _le(0, lo) or nonnegative_by_ranges(sp.expand(candidate) - 1, self.domains, ranges):
                self.trace.add("one log: the sum is log of the product below, which is >= 1", candidate, "->")
                return "one log of a product >= 1"
        return None

    # 4. a positive sum and its terms

    def sum_by_its_terms(self, expr, depth, ranges) -> Optional[str]:
        sums = [s for s in expr.atoms(sp.Sum) if len(s.limits) == 1 and not s.function.has(sp.Sum)]
        for the_sum in sums:
            (index, low, high), = the_sum.limits
            inner = {**ranges, index: (_number(low, -oo), _number(high, oo))}
            if not nonnegative_by_ranges(the_sum.function, self.domains, inner):
                continue
            s = sp.Dummy("S", positive=True)
            as_atom = expr.xreplace({the_sum: s})
            if as_atom.has(index):
                continue
            slope = sp.diff(as_atom, s)
            if nonnegative_by_ranges(slope, self.domains, {**ranges, s: (sp.S.Zero, oo)}):
                for label, lower in self._lower_terms(the_sum, expr):
                    bound = as_atom.xreplace({s: lower})
                    if self._simple(bound, ranges):
                        self.trace.add(f"the sum grows with {sp.sstr(the_sum)}, a sum of terms >= 0, which is at "
                                       f"least its term {label}", bound, ">=")
                        return "a positive sum is at least one of its terms"
            elif nonnegative_by_ranges(-slope, self.domains, {**ranges, s: (sp.S.Zero, oo)}):
                for label, upper in self._upper_terms(the_sum, expr, inner):
                    bound = as_atom.xreplace({s: upper})
                    if self._simple(bound, ranges):
                        self.trace.add(f"the sum falls as {sp.sstr(the_sum)} grows, which is at most {label}",
                                       bound, ">=")
                        return "a sum is at most n times its largest term"
        return None

    # max(z) >= z[a] and min(z) <= z[a] for every element

    def extreme_by_its_elements(self, expr, depth, ranges) -> Optional[str]:
        """Where ``D`` grows with ``max(z)``, replace it by an element ``z[a]`` of ``D`` (it is at least
        each); where ``D`` falls as ``min(z)`` grows, likewise."""
        for extreme in expr.atoms(vector_max, vector_min):
            base = extreme.args[0]
            elements = [x for x in expr.atoms(sp.Indexed) if x.base == base]
            s = sp.Dummy("M", real=True)
            slope = sp.diff(expr.xreplace({extreme: s}), s)
            growing = isinstance(extreme, vector_max)
            if not nonnegative_by_ranges(slope if growing else -slope, self.domains, {**ranges, s: (-oo, oo)}):
                continue
            for element in elements:
                bound = expr.xreplace({extreme: element})
                if self._simple(bound, ranges):
                    word = "largest" if growing else "smallest"
                    self.trace.add(f"the {word} element of {base} replaced by its element {element} "
                                   f"({'at most' if growing else 'at least'} it)", bound, ">=")
                    return f"the {word} element bounds each element"
        return None

    def _lower_terms(self, the_sum, expr):
        """Terms of ``the_sum`` (all >= 0) that it is at least: at each free class index in range, and at
        the largest element of a vector it runs over."""
        (index, low, high), = the_sum.limits
        for free, (free_low, free_high) in self.index_ranges.items():
            inside = sp.simplify(free_low - low).is_nonnegative and sp.simplify(high - free_high).is_nonnegative
            if inside and free != index:  # the index lies in the sum's range: its term is one of the sum's
                yield f"at {free}", the_sum.function.xreplace({index: free})
        for base, extreme in self._extremes(the_sum, expr):
            yield f"at the largest {base}", the_sum.function.xreplace({base[index]: extreme})

    def _upper_terms(self, the_sum, expr, inner):
        (index, low, high), = the_sum.limits
        count = high - low + 1
        for base, extreme in self._extremes(the_sum, expr):
            body = the_sum.function
            element = base[index]
            t = sp.Dummy("t", real=True)
            slope = sp.diff(body.xreplace({element: t}), t)
            if nonnegative_by_ranges(slope, self.domains, {**inner, t: (-oo, oo)}):
                yield f"{sp.sstr(count)} times its term at the largest {base}", count * body.xreplace({element: extreme})
        hi = bounds(the_sum.function, self.domains, inner)[1]
        if hi != oo:
            yield f"{sp.sstr(count)} times {hi}", count * hi

    def _extremes(self, the_sum, expr):
        """``(base, max(base))`` for each ``max(z)`` in ``expr`` whose vector the sum's summand uses only
        through its element at the sum's index."""
        (index, _, _), = the_sum.limits
        for extreme in expr.atoms(vector_max):
            base = extreme.args[0]
            body = the_sum.function
            uses = [x for x in body.atoms(sp.Indexed) if x.has(index)]
            if uses and all(x == base[index] for x in uses):
                yield base, extreme
