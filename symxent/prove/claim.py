"""A claim: two sides, a relation, and the variables with the domains they are drawn from.

:func:`make_claim` reads the user's input (formula strings through the safe parser, or SymPy
expressions), renames every sum's bound index apart (so nothing below can capture a free index), and
resolves the domain of every variable (``domains.py``: SymPy's assumptions, the natural domains of the
functions used, and the stated assumptions). The symbolic engine and the numeric checks both start
from a :class:`Claim`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

import sympy as sp

from ..definitions.binding import alpha_rename
from ..definitions.softmax import vector_max, vector_min
from ..definitions.symbols import n as N_SYMBOL
from . import domains as D

RELATIONS = ("==", ">=", "<=")


def free_atoms(expr) -> set:
    """The symbols of ``expr`` that no Sum binds, those inside vector indices and derivative variables
    included (SymPy's ``free_symbols`` misses the ``j`` of ``Derivative(f, z[j])``)."""
    bound = {limit[0] for s in expr.atoms(sp.Sum) for limit in s.limits}
    return {s for s in expr.atoms(sp.Symbol) if s not in bound}


def length_symbols(expr) -> set:
    """The symbolic number of classes in ``expr``: symxent's ``n`` (or an integer symbol named n)."""
    return {s for s in free_atoms(expr) if s == N_SYMBOL or (s.name == "n" and s.is_integer)}


def index_symbols(expr) -> list:
    """Free integer symbols other than the length that index a vector or a Kronecker delta: the class
    indices (k, c, ...), each in 0..n-1."""
    lengths = length_symbols(expr)
    used = set()
    for node in expr.atoms(sp.Indexed, sp.KroneckerDelta):
        used |= set().union(*(a.free_symbols for a in (node.indices if isinstance(node, sp.Indexed) else node.args)))
    return sorted((s for s in free_atoms(expr) if s.is_integer and s not in lengths and s in used),
                  key=sp.default_sort_key)


def count_symbols(expr) -> list:
    """Integer symbols and integer vectors that are neither the length nor class indices: sizes such
    as the number of shards ``R`` and the shard sizes ``m[r]``."""
    lengths, indices = length_symbols(expr), set(index_symbols(expr))
    scalars = [s for s in free_atoms(expr) if s.is_integer and s not in lengths and s not in indices
               and not any(s == x.base.label for x in expr.atoms(sp.Indexed))]
    vectors = {x.base for x in expr.atoms(sp.Indexed) if x.base.label.is_integer or x.is_integer}
    return sorted(scalars, key=sp.default_sort_key) + sorted(vectors, key=lambda b: str(b.label))


@dataclass
class Claim:
    """``lhs relation rhs`` for every point of the domains (and every n, unless ``n`` is given)."""

    lhs: sp.Expr                      # the sides as given (printed in the verdict)
    rhs: sp.Expr
    relation: str
    n: Optional[int]                  # a fixed number of classes, or None: every n
    left: sp.Expr = None              # the sides with every sum's index its own (alpha_rename)
    right: sp.Expr = None
    scalars: dict = field(default_factory=dict)   # Symbol -> Domain
    vectors: dict = field(default_factory=dict)   # IndexedBase -> Domain (of each element; simplex: sums to 1)
    indices: list = field(default_factory=list)   # free class indices, each in 0..n-1
    counts: list = field(default_factory=list)    # other integer symbols and vectors (sizes: R, m[r]), >= 1
    lengths: set = field(default_factory=set)     # the symbolic number of classes
    natural: dict = field(default_factory=dict)   # name -> Domain from the functions used (shown in the steps)
    stated: dict = field(default_factory=dict)    # name -> Domain from the assumptions
    conditions: list = field(default_factory=list)  # (expression, Domain): natural domains of expressions

    @property
    def symbolic_n(self) -> bool:
        return bool(self.lengths)

    @property
    def difference(self):
        """``lhs - rhs`` (``rhs - lhs`` for ``<=``): 0 for ``==``, >= 0 for the inequalities."""
        return self.right - self.left if self.relation == "<=" else self.left - self.right

    def domain_of(self, variable) -> D.Domain:
        return self.scalars.get(variable) or self.vectors.get(variable) or D.REAL

    def describe_domains(self) -> str:
        """What the variables range over, for the steps: the natural domains (where the functions used
        are defined: a log's argument > 0, entropy's p a distribution) and the assumed ones."""
        natural, assumed = [], []
        for v in sorted([*self.scalars, *self.vectors], key=sp.default_sort_key):
            domain = self.domain_of(v)
            if domain == D.REAL or (domain.lower is None and domain.upper is None and not domain.simplex):
                continue
            (assumed if _name(v) in self.stated else natural).append(domain.describe(_name(v)))
        parts = []
        if natural:
            parts.append("natural domain (where the functions used are defined): " + "; ".join(natural))
        if assumed:
            parts.append("assumed: " + "; ".join(assumed))
        return "; ".join(parts)


def _name(variable) -> str:
    return str(variable.label) if isinstance(variable, sp.IndexedBase) else variable.name


# --- building ---------------------------------------------------------------------------------

def _side(value, which: str, n, names):
    """One side as a SymPy expression, its natural domains, conditions and the kinds of its free names (a
    formula's: vector or scalar); a formula error names the side."""
    from .parse import FormulaError, parse_with_domains
    if isinstance(value, str):
        try:
            return parse_with_domains(value, n=n, names=names, with_kinds=True)
        except FormulaError as exc:
            raise FormulaError(f"{which}: {exc.reason}", exc.column, exc.line) from None
    if isinstance(value, bool):
        raise TypeError(f"{which}: expected a SymPy expression or a formula string, got a bool")
    if isinstance(value, (int, float)):
        return sp.sympify(value), {}, [], {}
    if not isinstance(value, sp.Expr):
        raise TypeError(f"{which}: expected a SymPy expression or a formula string, got {type(value).__name__} "
                        f"(pass the two sides of a relation separately)")
    return value, {}, [], {}


def _same_kind_on_both_sides(left_kinds: dict, right_kinds: dict) -> None:
    """A formula fixes each free name's kind from its own uses (a vector where a vector is expected, else a
    scalar): a name read as a vector on one side and as a scalar on the other would make the two sides talk about
    different things. That is an error naming it, not a verdict (``kl(p, (p + q)/2)`` reads ``q`` as a scalar)."""
    from .parse import FormulaError
    for name in sorted(set(left_kinds) & set(right_kinds)):
        if left_kinds[name] != right_kinds[name]:
            raise FormulaError(f"{name!r} is a {left_kinds[name]} in the lhs and a {right_kinds[name]} in the rhs: "
                               f"use it the same way on both sides (a free name is read as a vector only where a "
                               f"vector is expected; in a vector sum such as (p + q)/2 the left operand is the vector "
                               f"and the right one a scalar)")


def stated_domains(assumptions: Iterable, variables_by_name: dict) -> dict:
    """``{name: Domain}`` from the assumptions: strings (``"p: distribution"``, ``"0 <= eps <= 1"``),
    ``Eq(Sum(y[i], (i, 0, n - 1)), 1)``, bounds (``eps < 1``) and ``Q.positive(x)`` style predicates.
    Several facts about one name hold together."""
    stated: dict = {}

    def add(name, domain):
        stated[name] = domain if name not in stated else stated[name].intersect(domain)

    for fact in _flatten_and(assumptions):
        if isinstance(fact, str):
            for name, domain in D.parse_assumption(fact).items():
                if name not in variables_by_name:  # a typo must not silently assume nothing
                    raise ValueError(f"the assumption {fact!r} names {name!r}, which the claim does not use "
                                     f"(it uses {', '.join(sorted(variables_by_name)) or 'no variables'})")
                add(name, domain)
        elif isinstance(fact, sp.Eq):
            add(*_normalisation(fact))
        elif isinstance(fact, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)):
            add(*_bound(fact))
        elif isinstance(fact, sp.assumptions.AppliedPredicate) and len(fact.arguments) == 1:
            add(*_predicate(fact))
        else:
            raise ValueError(
                f"unsupported assumption {fact!r}: use 'p: distribution', '0 <= eps <= 1', "
                "Eq(Sum(y[i], (i, 0, n - 1)), 1), bounds such as x > 0, or Q.positive(x) / Q.nonnegative(x) / "
                "Q.negative(x)")
    return stated


def _flatten_and(assumptions) -> list:
    if isinstance(assumptions, (sp.Basic, str)):
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


def _normalisation(eq) -> tuple:
    """``Sum(y[i], (i, 0, n - 1)) = 1``: y sums to 1 (the only equality understood)."""
    the_sum, value = (eq.lhs, eq.rhs) if isinstance(eq.lhs, sp.Sum) else (eq.rhs, eq.lhs)
    if isinstance(the_sum, sp.Sum) and value == 1 and len(the_sum.limits) == 1:
        body, (index, low, high) = the_sum.function, the_sum.limits[0]
        if isinstance(body, sp.Indexed) and body.indices == (index,) and low == 0 and length_symbols(high + 1):
            return str(body.base.label), D.SUMS_TO_ONE
    raise ValueError(f"unsupported constraint {eq}: only Eq(Sum(y[i], (i, 0, n - 1)), 1) is understood")


def _bound(rel) -> tuple:
    strict = isinstance(rel, (sp.StrictGreaterThan, sp.StrictLessThan))
    greater = isinstance(rel, (sp.StrictGreaterThan, sp.GreaterThan))
    big, small = (rel.lhs, rel.rhs) if greater else (rel.rhs, rel.lhs)
    if isinstance(big, sp.Symbol) and small.is_number and small.is_real:
        return big.name, D.Domain(lower=sp.nsimplify(small), lower_strict=strict, label=str(rel))
    if isinstance(small, sp.Symbol) and big.is_number and big.is_real:
        return small.name, D.Domain(upper=sp.nsimplify(big), upper_strict=strict, label=str(rel))
    raise ValueError(f"unsupported bound {rel}: expected a symbol compared with a number")


def _predicate(fact) -> tuple:
    (arg,) = fact.arguments
    if not isinstance(arg, sp.Symbol):
        raise ValueError(f"unsupported assumption {fact}: expected a predicate on a symbol")
    kinds = {sp.Q.positive: D.POSITIVE, sp.Q.nonnegative: D.NONNEGATIVE, sp.Q.negative: D.NEGATIVE}
    if fact.function not in kinds:
        raise ValueError(f"unsupported assumption {fact}: use Q.positive, Q.nonnegative or Q.negative")
    return arg.name, kinds[fact.function]


def _one_object_per_name(lhs, rhs) -> tuple:
    """One SymPy object per name on both sides: a formula's ``x`` (real) and an API ``Symbol("x")`` are the
    same variable (their assumptions merged; contradictory ones are an error), else both would be drawn
    apart while the counterexample shows one value per name."""
    both = sp.Add(lhs, rhs, evaluate=False)
    bound = {limit[0] for s in both.atoms(sp.Sum) for limit in s.limits}
    groups: dict = {}
    for symbol in both.atoms(sp.Symbol) - bound:
        groups.setdefault(("symbol", symbol.name), set()).add(symbol)
    for base in {x.base for x in both.atoms(sp.Indexed)} | {e.args[0] for e in both.atoms(vector_max, vector_min)}:
        groups.setdefault(("vector", str(base.label)), set()).add(base)
        groups.get(("symbol", str(base.label)), set()).discard(base.label)
    replacements = {}
    for (kind, name), objects in groups.items():
        if len(objects) < 2:
            continue
        merged = {}
        for obj in objects:
            assumptions = (obj.label if kind == "vector" else obj).assumptions0
            merged.update({key: value for key, value in assumptions.items() if value is not None})
        try:
            unified = sp.IndexedBase(name, **_primary(merged)) if kind == "vector" else sp.Symbol(name, **_primary(merged))
        except Exception as exc:  # SymPy's InconsistentAssumptions
            raise ValueError(f"{name!r} appears with contradictory assumptions on the two sides: {exc}") from None
        for obj in objects:
            if obj != unified:
                replacements[obj] = unified
    if not replacements:
        return lhs, rhs
    return sp.sympify(lhs).xreplace(replacements), sp.sympify(rhs).xreplace(replacements)


def _primary(assumptions: dict) -> dict:
    """The defining assumptions of a merged set (the derived ones follow from them)."""
    keys = ("integer", "positive", "nonnegative", "negative", "nonpositive", "real")
    chosen = {key: assumptions[key] for key in keys if assumptions.get(key) is True}
    if chosen.get("integer") and chosen.get("positive"):
        chosen.pop("nonnegative", None)
    return chosen or {"real": True} if assumptions.get("real") else chosen


def _logged(exprs) -> set:
    """Names that appear bare inside a ``log`` (a symbol, or a vector element): they must be > 0 there."""
    names = set()
    for expr in exprs:
        for lg in expr.atoms(sp.log):
            u = lg.args[0]
            if isinstance(u, sp.Symbol) and not u.is_integer:
                names.add(u.name)
            elif isinstance(u, sp.Indexed):
                names.add(str(u.base.label))
    return names


def make_claim(lhs, rhs, relation: str = "==", assumptions=(), n: Optional[int] = None, names=None) -> Claim:
    """A :class:`Claim` from formula strings or SymPy expressions (see the module docstring)."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer (the number of classes) or None, got {n!r}")
    lhs, natural_left, conditions_left, kinds_left = _side(lhs, "lhs", n, names)
    rhs, natural_right, conditions_right, kinds_right = _side(rhs, "rhs", n, names)
    natural = dict(natural_left)
    for name, domain in natural_right.items():
        natural[name] = domain if name not in natural else natural[name].intersect(domain)
    _same_kind_on_both_sides(kinds_left, kinds_right)
    lhs, rhs = _one_object_per_name(lhs, rhs)
    left, right = alpha_rename(lhs), alpha_rename(rhs)
    both = sp.Add(left, right, evaluate=False)
    lengths = length_symbols(both)
    counts = count_symbols(both)
    all_vectors = {x.base for x in both.atoms(sp.Indexed)} | {e.args[0] for e in both.atoms(vector_max, vector_min)}
    vectors = all_vectors - set(counts)
    labels = {v.label for v in all_vectors}
    indices = index_symbols(both)
    scalars = {s for s in free_atoms(both) if not s.is_integer and s not in labels and s not in lengths}
    labels |= {c.label for c in counts if isinstance(c, sp.IndexedBase)}
    for name in _logged([left, right]):
        natural[name] = D.POSITIVE if name not in natural else natural[name].intersect(D.POSITIVE)
    by_name = {**{s.name: s for s in scalars}, **{str(v.label): v for v in vectors}}
    stated = {name: domain for name, domain in stated_domains(assumptions, by_name).items() if name in by_name}
    claim = Claim(lhs, rhs, relation, n, left, right, indices=indices, counts=counts, lengths=lengths,
                  natural=natural, stated=stated, conditions=conditions_left + conditions_right)
    ordered = sorted([(s, s.name) for s in scalars] + [(v, str(v.label)) for v in vectors], key=lambda pair: pair[1])
    for variable, name in ordered:  # in name order: the steps are the same in every run
        chosen = stated.get(name, natural.get(name, D.REAL))  # a stated domain replaces the natural one
        domain = D.symbol_domain(variable).intersect(chosen)
        if domain.simplex and domain.nonnegative:  # elements >= 0 that sum to 1 are each <= 1
            domain = domain.intersect(D.Domain(upper=sp.S.One, label=domain.label))
        if isinstance(variable, sp.IndexedBase):
            claim.vectors[variable] = domain
        else:
            if domain.simplex:
                raise ValueError(f"{name} is a scalar: 'sums to 1' applies to vectors")
            claim.scalars[variable] = domain
    return claim
