"""Symbols and vectors shared by the whole catalogue.

A *vector* is anything with a length and integer indexing:

- a concrete vector: a tuple of SymPy expressions (numbers or symbols), length an ``int``;
- a :class:`SymbolicVector`: ``v[0], ..., v[n-1]`` for a symbolic number of classes ``n``
  (an ``IndexedBase`` with its length);
- a :class:`MappedVector`: ``v[k] = f(k)``, e.g. ``softmax(z)`` of a symbolic ``z``.

Class indices run from 0 to n - 1, as in PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Number
from typing import Callable, Sequence, Union

import sympy as sp

from .binding import bind

#: the number of classes, symbolic
n = sp.Symbol("n", integer=True, positive=True)
#: free class indices, for formulas: k and l (gradient components), c (target), i and j. A catalogue
#: sum never binds these: it binds a BoundIndex of the same name (binding.py), so a free z[j] is
#: never captured by the j of a sum.
i, j, k, l, c = sp.symbols("i j k l c", integer=True, nonnegative=True)
#: a scalar logit and a scalar target (binary losses)
x, t = sp.symbols("x t", real=True)
#: the label-smoothing coefficient (PyTorch's ``label_smoothing``), in [0, 1]: the one symbol for it everywhere
epsilon = sp.Symbol("epsilon", nonnegative=True)


@dataclass(frozen=True)
class SymbolicVector:
    """The vector ``(v_0, ..., v_{length-1})`` with a symbolic length: ``v[k]`` is ``Indexed``."""

    base: sp.IndexedBase
    length: sp.Expr = n

    def __getitem__(self, index):
        return self.base[index]

    @property
    def name(self) -> str:
        return str(self.base)


@dataclass(frozen=True)
class MappedVector:
    """The vector ``v[k] = element(k)`` of the given length (symbolic or concrete)."""

    element: Callable[[sp.Expr], sp.Expr]
    length: Union[int, sp.Expr]

    def __getitem__(self, index):
        return self.element(as_expr(index, "index"))


Vector = Union[tuple, SymbolicVector, MappedVector]


def vector(name: str, length: sp.Expr = n, **assumptions) -> SymbolicVector:
    """A real vector of symbolic length, e.g. ``vector("z")`` or ``vector("p", positive=True)``."""
    assumptions.setdefault("real", True)
    return SymbolicVector(sp.IndexedBase(name, **assumptions), length)


def as_expr(value, where: str = "value") -> sp.Expr:
    """``value`` as a SymPy object: a SymPy object as is, a (Python or NumPy) number converted.

    Anything else is a ``TypeError``: strings in particular are never handed to ``sympify`` (which
    would ``eval`` them); parse formulas with :func:`symxent.prove.parse_formula`.
    """
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, Number):
        raise TypeError(
            f"{where}: expected a number or a SymPy expression, got {type(value).__name__} "
            f"{value!r} (strings are not parsed here: use symxent.prove.parse_formula or sympy.Rational)"
        )
    return sp.sympify(value)  # a number only: never a string


def as_vector(v, name: str = "vector") -> Vector:
    """Normalise ``v`` to a vector: tuples of numbers/expressions, IndexedBase, or vectors."""
    if isinstance(v, (SymbolicVector, MappedVector)):
        return v
    if isinstance(v, sp.IndexedBase):
        return SymbolicVector(v)
    if isinstance(v, sp.MatrixBase):
        v = list(v)
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        try:
            v = list(v)  # e.g. a NumPy array
        except TypeError:
            raise TypeError(f"{name}: expected a vector (sequence or IndexedBase), got {type(v).__name__}") from None
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{name}: expected a vector, got a string")
    if len(v) == 0:
        raise ValueError(f"{name}: a vector needs at least one class, got an empty one")
    return tuple(as_expr(e, f"{name}[{idx}]") for idx, e in enumerate(v))


def length(v: Vector):
    """The number of classes of ``v``: an ``int`` for concrete vectors, else a SymPy expression."""
    return len(v) if isinstance(v, tuple) else v.length


def common_length(*vectors: Vector):
    """The shared length of ``vectors``; a clear error if they differ."""
    first, *rest = (length(v) for v in vectors)
    for other in rest:
        if isinstance(first, int) and isinstance(other, int):
            same = first == other
        else:
            same = not isinstance(first, int) and not isinstance(other, int) and sp.simplify(first - other) == 0
        if not same:
            raise ValueError(f"vectors have different numbers of classes: {first} and {other}")
    return first


def class_sum(body: Callable[[sp.Expr], sp.Expr], *vectors: Vector, index: Union[sp.Symbol, str] = "i") -> sp.Expr:
    """``sum_{m=0}^{n-1} body(m)`` over the class axis shared by ``vectors``.

    Concrete vectors give an explicit ``Add``; symbolic ones an unevaluated ``Sum`` whose index is a
    :class:`~symxent.definitions.binding.BoundIndex` named like ``index`` (or the next free letter when
    the body already uses that name): never the free index of the same name.
    """
    size = common_length(*vectors)
    if isinstance(size, int):
        return sp.Add(*(body(sp.Integer(m)) for m in range(size)))
    name = index if isinstance(index, str) else index.name
    bound, summand = bind(body, name, avoid=[size])
    return sp.Sum(summand, (bound, 0, size - 1))


def elements(v: Vector) -> tuple:
    """The elements of a concrete vector (a tuple); an error for symbolic length."""
    size = length(v)
    if not isinstance(size, int):
        raise TypeError("this vector has a symbolic length: index it instead of listing it")
    return tuple(v[m] for m in range(size))


def materialise(v: Vector) -> Vector:
    """A concrete vector as a tuple, a symbolic one unchanged."""
    return elements(v) if isinstance(length(v), int) else v
