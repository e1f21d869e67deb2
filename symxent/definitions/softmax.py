"""Softmax, log-softmax, logsumexp and the largest / smallest element over the class axis.

``softmax(z)`` of a concrete vector is a tuple; of a symbolic vector a vector whose element
``k`` is ``exp(z_k) / sum_j exp(z_j)``. ``softmax(z, k)`` is the single element ``k``.
``max_element(z)`` is ``Max(z_0, ..., z_{n-1})``: for a symbolic length the function
:class:`vector_max`, which the prover knows by its two defining facts (every ``z_k <= max(z)``,
and some ``z_k`` equals it).
"""
from __future__ import annotations

import sympy as sp

from .symbols import MappedVector, SymbolicVector, Vector, as_expr, as_vector, class_sum, elements, j, length, materialise


class _VectorExtreme(sp.Function):
    """The largest (or smallest) element of the vector ``base[0 .. size-1]``: args ``(base, size)``;
    written out as ``Max`` / ``Min`` once ``size`` is a number."""

    nargs = 2
    _pick = None  # sp.Max or sp.Min
    _word = ""

    @classmethod
    def eval(cls, base, size):
        if size.is_Integer:
            return cls._pick(*(base[m] for m in range(int(size))))
        return None

    def _eval_is_real(self):
        return self.args[0][0].is_real

    def _eval_is_positive(self):
        return True if self.args[0][0].is_positive else None

    def _eval_is_negative(self):
        return True if self.args[0][0].is_negative else None

    def _sympystr(self, printer):
        return f"{self._word}({printer._print(self.args[0])})"

    def _latex(self, printer, exp=None):
        base = printer._print(self.args[0])
        text = rf"\{self._word}_{{i}} {base}_{{i}}"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"


class vector_max(_VectorExtreme):
    r""":math:`\max_i z_i` for a vector of symbolic length (args: the IndexedBase and the length)."""

    _pick, _word = sp.Max, "max"


class vector_min(_VectorExtreme):
    r""":math:`\min_i z_i` for a vector of symbolic length (args: the IndexedBase and the length)."""

    _pick, _word = sp.Min, "min"


def _extreme(z, name: str, pick, function):
    z = as_vector(z, name)
    if isinstance(length(z), int):
        return pick(*elements(z))
    if isinstance(z, SymbolicVector):
        return function(z.base, z.length)
    raise ValueError(f"the {function._word} of a computed vector of symbolic length is not supported: apply it to a "
                     f"named vector (max(z)), or give a number of classes")


def max_element(z) -> sp.Expr:
    r""":math:`\max_i z_i`: ``Max`` of the elements, or :class:`vector_max` for a symbolic length."""
    return _extreme(z, "z", sp.Max, vector_max)


def min_element(z) -> sp.Expr:
    r""":math:`\min_i z_i`: ``Min`` of the elements, or :class:`vector_min` for a symbolic length."""
    return _extreme(z, "z", sp.Min, vector_min)


def logsumexp(z) -> sp.Expr:
    r""":math:`\mathrm{logsumexp}(z) = \log \sum_j e^{z_j}`."""
    z = as_vector(z, "z")
    return sp.log(class_sum(lambda m: sp.exp(z[m]), z, index=j))


def _vector_or_element(element, z: Vector, k):
    if k is not None:
        return element(as_expr(k, "k"))
    return materialise(MappedVector(element, length(z)))


def softmax(z, k=None):
    r""":math:`\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}`."""
    z = as_vector(z, "z")
    denominator = class_sum(lambda m: sp.exp(z[m]), z, index=j)
    return _vector_or_element(lambda m: sp.exp(z[m]) / denominator, z, k)


def log_softmax(z, k=None):
    r""":math:`\mathrm{log\_softmax}(z)_k = z_k - \mathrm{logsumexp}(z)`."""
    z = as_vector(z, "z")
    lse = logsumexp(z)
    return _vector_or_element(lambda m: z[m] - lse, z, k)
