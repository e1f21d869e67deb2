"""Softmax, log-softmax and logsumexp over the class axis.

``softmax(z)`` of a concrete vector is a tuple; of a symbolic vector a vector whose element
``k`` is ``exp(z_k) / sum_j exp(z_j)``. ``softmax(z, k)`` is the single element ``k``.
"""
from __future__ import annotations

import sympy as sp

from .symbols import MappedVector, Vector, as_expr, as_vector, class_sum, j, length, materialise


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
