"""The numeric phase of every proof: both sides at random points of the claim's domains.

Points are drawn from the domains of :mod:`~symxent.prove.claim` (a distribution sums to exactly 1, a
label lies in [0, 1], ...), for ``n`` = 2, 3, 5, 8 and 1 when the number of classes is symbolic, with
the free class indices at random values that include coincidences (``k = c``, all equal, all
different). Both sides are evaluated at 50 digits (:func:`numeric.evaluate`); a point where they break
the relation is re-evaluated independently (:func:`numeric.evaluate_exact`: written out by SymPy,
adaptive ``evalf``) before it becomes a counterexample, which then satisfies every domain by
construction and is checked against them once more.

The same points cross-examine a symbolic proof: ``proved`` is only returned when at least
:data:`MIN_POINTS` points were evaluated and none contradicts it.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Optional

import mpmath
import sympy as sp

from . import numeric
from .claim import Claim

#: numbers of classes tried when n is symbolic (1 last: a corner, where e.g. every index is 0)
SIZES = (2, 3, 5, 8)
#: rounds over SIZES (each round: one point per size)
ROUNDS = 7
#: points drawn for a claim without a symbolic n
SCALAR_POINTS = 24
#: at least this many points must be evaluated before ``proved`` is returned
MIN_POINTS = 20
KINDS = ("moderate", "large+", "moderate", "large-", "mixed")


@dataclass
class Examination:
    """What the numbers said: how many points were evaluated, and the first confirmed violation."""

    points: int = 0
    counterexample: Optional[dict] = None
    gap: Optional[mpmath.mpf] = None
    sizes: tuple = ()


def _text(value) -> str:
    """An exact number as a short decimal (``0.35``, ``-120``) or a fraction when it is not one."""
    value = sp.Rational(value)
    if value.q == 1:
        return str(value.p)
    for digits in range(1, 7):
        scaled = value * 10**digits
        if scaled.q == 1:
            sign = "-" if value < 0 else ""
            whole, frac = divmod(abs(scaled.p), 10**digits)
            return f"{sign}{whole}.{frac:0{digits}d}"
    return f"{value.p}/{value.q}"


def _specs(claim: Claim, rng: random.Random) -> list:
    """(size, index assignment, kind) for each point to draw."""
    if claim.symbolic_n:
        sizes = [claim.n] * (ROUNDS * len(SIZES)) if claim.n is not None else \
            [size for _ in range(ROUNDS) for size in SIZES] + [1, 1]
    else:
        sizes = [claim.n] * SCALAR_POINTS
    specs, patterns = [], {}
    highs = [int(limit[2]) for side in (claim.left, claim.right) for s in side.atoms(sp.Sum) for limit in s.limits
             if limit[2].is_Integer]
    for number, size in enumerate(sizes):
        range_ = size if size is not None else max([4] + [h + 2 for h in highs])
        if size not in patterns:  # three index assignments per size, reused (a derivative is written out once each)
            patterns[size] = [_indices(claim.indices, range_, pattern, rng) for pattern in range(3)]
        specs.append((size, patterns[size][number % 3], KINDS[number % len(KINDS)]))
    return specs


def _indices(indices: list, size: int, pattern: int, rng: random.Random) -> dict:
    """Values for the free class indices: all equal (pattern 0), independent (1), or all different
    where there are enough classes (2)."""
    if not indices:
        return {}
    if pattern == 0:
        value = rng.randrange(size)
        return {s: value for s in indices}
    if pattern == 2 and len(indices) <= size:
        return dict(zip(indices, rng.sample(range(size), len(indices))))
    return {s: rng.randrange(size) for s in indices}


def _vector_length(claim: Claim, base, size) -> int:
    """How many elements of ``base`` to draw together (a vector that sums to 1): the number of
    classes, or (a concrete claim) one past the largest position used."""
    if size is not None:
        return size
    if claim.n is not None:
        return claim.n
    positions = [int(x.indices[0]) for side in (claim.left, claim.right) for x in side.atoms(sp.Indexed)
                 if x.base == base and len(x.indices) == 1 and x.indices[0].is_Integer]
    return max(positions, default=0) + 1


class Point(dict):
    """The numbers of one point, keyed as :func:`numeric.evaluate` reads them: a symbol, or
    ``(base, positions)`` for a vector element. Scalars and vectors that sum to 1 are drawn at once;
    other vector elements at their first use (any number of indices, e.g. ``x[r, i]``). ``values``
    keeps them as exact numbers keyed by SymPy objects, ``shown`` as text."""

    def __init__(self, claim: Claim, size, assignment: dict, kind: str, rng: random.Random):
        super().__init__()
        self.claim, self.kind, self.rng = claim, kind, rng
        self.size = size if claim.symbolic_n else None
        self.values, self.shown = {}, {}
        if size is not None:
            self.update({s: mpmath.mpf(size) for s in claim.lengths})
        self.update({s: mpmath.mpf(v) for s, v in assignment.items()})
        for base, domain in sorted(claim.vectors.items(), key=lambda item: str(item[0])):
            if domain.simplex:
                for position, value in enumerate(domain.draw_vector(rng, _vector_length(claim, base, size), kind)):
                    self._set(base[position], (base, (position,)), value)
        for symbol, domain in sorted(claim.scalars.items(), key=lambda item: item[0].name):
            self._set(symbol, symbol, domain.draw(rng, kind))
        for count in claim.counts:
            if isinstance(count, sp.Symbol):
                self._set(count, count, sp.Integer(rng.randint(1, 3)))

    def _set(self, key_sympy, key, value) -> None:
        self.values[key_sympy] = value
        self.shown[str(key_sympy)] = _text(value)
        self[key] = mpmath.mpf(value.p) / value.q

    def __missing__(self, key):
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], sp.IndexedBase)):
            raise KeyError(key)
        base, positions = key
        if base in self.claim.vectors and self.size is not None and \
                not all(0 <= p < self.size for p in positions):
            raise numeric.Undefined  # z[k + 1] with k = n - 1: outside the vector, the claim says nothing
        if base in self.claim.counts:
            value = sp.Integer(self.rng.randint(1, 3))
        elif base in self.claim.vectors and not self.claim.vectors[base].simplex:
            value = self.claim.vectors[base].draw(self.rng, self.kind)
        else:
            raise KeyError(key)
        self._set(base[positions], key, value)
        return self[key]


def _meets_conditions(claim: Claim, point) -> bool:
    """Every expression passed where a function has a natural domain lies there (``eps/2`` in [0, 1])."""
    for expr, domain in claim.conditions:
        try:
            value = numeric.evaluate(expr, point)
        except LookupError:
            value = numeric.sympy_number(expr.xreplace(point.values))
        if value is None or not domain.contains(sp.Rational(str(mpmath.nstr(value, 40, min_fixed=-99, max_fixed=99)))):
            return False
    return True


def _in_domains(claim: Claim, values: dict) -> bool:
    """Every drawn number lies in its domain, and every vector that sums to 1 does so exactly."""
    for key, value in values.items():
        if isinstance(key, sp.Symbol) and key in claim.scalars and not claim.scalars[key].contains(value):
            return False
        if isinstance(key, sp.Indexed) and key.base in claim.vectors and not claim.vectors[key.base].contains(value):
            return False
    for base, domain in claim.vectors.items():
        elements = [v for key, v in values.items() if isinstance(key, sp.Indexed) and key.base == base]
        if domain.simplex and elements and sum(elements) != 1:
            return False
    return True


class _Sides:
    """Both sides at a point: by the direct walk where it can, else through the written-out expression
    (derivatives), else by SymPy's evalf (where 50 digits are not enough for the walk, or it does not
    know a function)."""

    def __init__(self, claim: Claim):
        self.claim = claim
        self.concrete: dict = {}

    def value(self, side, size, assignment: dict, point: Point):
        try:
            value = numeric.evaluate(side, point)
        except LookupError:
            value, side = None, self._written_out(side, size, assignment)
            try:
                value = numeric.evaluate(side, point)
            except LookupError:
                pass
        if value is None:  # undefined at 60 digits: a cancellation (1 - sigmoid(600)) or truly undefined
            try:
                return numeric.evaluate(side, point, digits=12 * numeric.DIGITS)
            except LookupError:
                value = numeric.sympy_number(self._written_out(side, size, assignment).xreplace(point.values))
        return value

    def _written_out(self, side, size, assignment: dict):
        key = (id(side), size, tuple(sorted(assignment.items(), key=lambda item: item[0].name)))
        if key not in self.concrete:
            self.concrete[key] = numeric.instantiate(side, size, assignment)
        return self.concrete[key]


def examine(claim: Claim, seed: int = 0, stop_at_violation: bool = True) -> Examination:
    """Evaluate the claim at its points (more rounds while fewer than :data:`MIN_POINTS` had defined
    values, up to four times as many); the first confirmed violation is the counterexample."""
    rng = random.Random(seed)
    sides = _Sides(claim)
    result = Examination()
    sizes = set()
    for attempt in range(4):
        if attempt and result.points >= MIN_POINTS:
            break
        for size, assignment, kind in _specs(claim, rng):
            try:
                point = Point(claim, size, assignment, kind, rng)
            except ValueError:  # e.g. a simplex that cannot be drawn in hundredths at this size
                continue
            if claim.conditions and not _meets_conditions(claim, point):
                continue
            left = sides.value(claim.left, size, assignment, point)
            right = sides.value(claim.right, size, assignment, point)
            if left is None or right is None:
                continue
            result.points += 1
            sizes.add(size)
            if result.counterexample is None and numeric.violates(left, right, claim.relation):
                confirmed = _confirm(claim, size, assignment, point)
                if confirmed is not None:
                    result.counterexample, result.gap = confirmed
                    if stop_at_violation:
                        break
        if result.counterexample is not None and stop_at_violation:
            break
    result.sizes = tuple(sorted(s for s in sizes if s is not None))
    return result


def _confirm(claim: Claim, size, assignment: dict, point: Point) -> Optional[tuple]:
    """The point, re-evaluated by SymPy and checked against the domains: ``(counterexample, gap)``."""
    if not _in_domains(claim, point.values):
        return None
    left = numeric.evaluate_exact(claim.left, size, assignment, point.values)
    right = numeric.evaluate_exact(claim.right, size, assignment, point.values)
    if left is None or right is None or not numeric.violates(left, right, claim.relation):
        return None
    shown = {}
    if size is not None and claim.lengths:
        shown.update({str(s): str(size) for s in claim.lengths})
    shown.update({s.name: str(v) for s, v in assignment.items()})
    shown.update(sorted(point.shown.items(), key=lambda item: _natural_order(item[0])))
    shown["lhs"], shown["rhs"] = numeric.show(left), numeric.show(right)
    with mpmath.workdps(numeric.DIGITS + 10):
        gap = left - right
    shown["lhs - rhs"] = numeric.show(gap)
    return shown, gap


def _natural_order(name: str) -> tuple:
    """``p[2]`` before ``p[10]``: names with their numbers compared as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def describe(result: Examination, claim: Claim) -> str:
    """``both sides agree at 26 random points (n = 1, 2, 3, 5, 8; ...)`` for the steps."""
    where = f"n = {', '.join(map(str, result.sizes))}; " if claim.symbolic_n and result.sizes else ""
    relation = "agree" if claim.relation == "==" else f"satisfy {claim.relation}"
    return (f"cross-examined: both sides {relation} at {result.points} random points of the domain "
            f"({where}mpmath, {numeric.DIGITS} digits)")

