"""Bound summation indices that can never capture a free one.

A class-axis sum binds an index: in :math:`\\sum_j e^{z_j}` the ``j`` is local to the sum. If that
index were the same SymPy symbol as a free index ``j`` of the user's formula, differentiating by a
free ``z[j]`` or substituting a value for ``j`` would reach inside the sum: the classic capture bug
(``d logsumexp(z) / d z[j]`` would come out as 1). Three pieces prevent it:

- :class:`BoundIndex`: the index a catalogue sum binds. It prints as its name (``j``) but is its own
  class, so it is never equal to the free ``Symbol("j")`` of a formula;
- :func:`alpha_rename`: every ``Sum`` of an expression gets a fresh ``Dummy`` index of its own (free
  occurrences and inner sums respected): afterwards no bound index equals any other symbol, so
  substitution, differentiation and comparison are safe;
- :func:`readable`: for what a person reads, bound indices renamed to short letters that differ
  from every free symbol and every enclosing bound index (``Sum(exp(z[i]), (i, 0, n - 1)) - z[j]``).
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable

import sympy as sp

#: letters tried, in order, for a bound index (after the one asked for)
BOUND_NAMES = ("i", "j", "m", "k", "l", "r", "s", "a", "b")


class BoundIndex(sp.Symbol):
    """An index bound by a sum: prints as its name, never equal to a free symbol of that name."""


def bound_index(name: str) -> BoundIndex:
    """The bound index ``name`` (an integer >= 0: class indices run over 0..n-1)."""
    return BoundIndex(name, integer=True, nonnegative=True)


def _names_in(exprs: Iterable) -> set:
    names = set()
    for expr in exprs:
        if isinstance(expr, sp.Basic):
            names |= {s.name for s in expr.atoms(sp.Symbol)}
    return names


def fresh_name(preferred: str, taken: set) -> str:
    """``preferred`` if no symbol has that name, else the first free letter of :data:`BOUND_NAMES`
    (then ``i1``, ``i2``, ...)."""
    candidates = itertools.chain([preferred], BOUND_NAMES, (f"i{m}" for m in itertools.count(1)))
    return next(name for name in candidates if name not in taken)


def bind(body: Callable[[sp.Expr], sp.Expr], preferred: str = "i", avoid: Iterable = ()) -> tuple:
    """``(index, body(index))`` with a :class:`BoundIndex` named ``preferred`` unless that name is
    already used in the body (by a free symbol or an inner sum) or by ``avoid``: then the next free
    letter. The name is deterministic, so the same definition gives the same expression."""
    probe = sp.Dummy("probe", integer=True, nonnegative=True)
    built = sp.sympify(body(probe))
    name = fresh_name(preferred, _names_in([built, *avoid]) - {probe.name})
    index = bound_index(name)
    return index, built.xreplace({probe: index})


def _bound_variables(expr) -> list:
    return [limit[0] for s in expr.atoms(sp.Sum) for limit in s.limits]


def _rename_sums(expr, choose: Callable[[sp.Symbol, set], sp.Symbol], taken: frozenset):
    """Rename the bound variables of every Sum in ``expr``, outermost first.

    ``choose(old, avoid)`` gives the new variable, whose name must not be in ``avoid``: the names of
    the enclosing sums' variables and of every other symbol in the sum's body (so that the new name
    captures nothing, not even an inner sum's own index)."""
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
        return expr
    if not isinstance(expr, sp.Sum):
        return expr.func(*[_rename_sums(a, choose, taken) for a in expr.args])
    body, limits = expr.function, [list(limit) for limit in expr.limits]
    for position in reversed(range(len(limits))):  # the last limit is the outermost variable
        old = limits[position][0]
        others = {s.name for s in body.atoms(sp.Symbol) if s != old}
        for inner in limits[:position]:
            others |= {s.name for bound in inner[1:] for s in bound.atoms(sp.Symbol) if s != old}
        new = choose(old, taken | others)
        taken = taken | {new.name}
        body = body.xreplace({old: new})
        for inner in limits[:position]:  # an inner variable's limits may use an outer one (x[r, i], i < m[r])
            inner[1], inner[2] = inner[1].xreplace({old: new}), inner[2].xreplace({old: new})
        limits[position][0] = new
    return sp.Sum(_rename_sums(body, choose, taken), *[tuple(limit) for limit in limits])


def alpha_rename(expr):
    """``expr`` with each Sum's index replaced by a fresh ``Dummy`` of its own (same name, integer).

    After this no bound index equals a free symbol or another bound index, so ``xreplace`` of a free
    index, ``diff`` by a free ``z[j]`` and term-by-term comparison cannot reach into a sum."""
    def fresh(old, avoid):
        return sp.Dummy(old.name.lstrip("_") or "i", integer=True, nonnegative=old.is_nonnegative)
    return _rename_sums(sp.sympify(expr), fresh, frozenset())


def readable(expr, avoid: Iterable = ()):
    """``expr`` with every bound index renamed to a short letter (its own name where possible) that no
    free symbol of ``expr`` or ``avoid``, no enclosing sum and nothing in its body uses: for printing,
    not for computing."""
    if not isinstance(expr, sp.Basic):
        return expr
    bound = set(_bound_variables(expr))
    free_names = {s.name for s in expr.atoms(sp.Symbol) if s not in bound} | _names_in(avoid)
    # a free Dummy index (a summand shown on its own, "for every class i") prints without its underscore
    loose = {d: bound_index(fresh_name(d.name.lstrip("_") or "i", free_names)) for d in expr.atoms(sp.Dummy)
             if d not in bound and d.is_integer}
    expr = expr.xreplace(loose) if loose else expr
    if not expr.has(sp.Sum):
        return expr

    def letter(old, others):
        return bound_index(fresh_name(old.name.lstrip("_").rstrip("0123456789") or "i", free_names | others))
    return _rename_sums(expr, letter, frozenset())


def canonical(expr):
    """``expr`` with each sum's index renamed by its nesting depth (``_b0`` innermost-free ...), so that
    two sums that differ only in the name of their index compare equal: ``Sum(z[i], (i, 0, n-1))``
    and ``Sum(z[j], (j, 0, n-1))`` have the same canonical form."""
    def walk(e, depth):
        if isinstance(e, sp.Sum):
            body, limits = e.function, []
            for v, lo, hi in e.limits:
                bound = sp.Symbol(f"_b{depth}", integer=True)
                body = body.xreplace({v: bound})
                limits.append((bound, walk(lo, depth), walk(hi, depth)))
                depth += 1
            return sp.Sum(walk(body, depth), *limits)
        if not isinstance(e, sp.Basic) or not e.has(sp.Sum):
            return e
        return e.func(*[walk(a, depth) for a in e.args])
    return walk(sp.sympify(expr), 0)
