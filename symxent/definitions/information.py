"""Information theory: self-information, entropy, cross-entropy, KL divergence.

All take a log ``base``: ``e`` (nats, the default), ``2`` (bits), ``10`` (hartleys), or any
positive number other than 1. ``log_b x = ln x / ln b``. Terms with a zero probability weight
contribute 0 (the convention ``0 log 0 = 0``, like ``xlogy``).
"""
from __future__ import annotations

import sympy as sp

from .symbols import MappedVector, Vector, as_expr, as_vector, class_sum, common_length

_BASE_NAMES = {"e": sp.E, "nat": sp.E, "nats": sp.E, "2": 2, "bit": 2, "bits": 2,
               "10": 10, "hartley": 10, "hartleys": 10, "dit": 10}


def log_base(base) -> sp.Expr:
    """Validate a log base and return it as a SymPy expression (``e``, ``2``, ``10``, ...)."""
    if isinstance(base, str):
        try:
            return sp.sympify(_BASE_NAMES[base.strip().lower()])
        except KeyError:
            raise ValueError(
                f"unknown log base {base!r}: use e (nats), 2 (bits), 10, or a positive number other than 1"
            ) from None
    if isinstance(base, bool) or not isinstance(base, (int, float, sp.Basic)):
        raise ValueError(f"unknown log base {base!r}: use e (nats), 2 (bits), 10, or a positive number other than 1")
    b = as_expr(base, "base")
    if b.is_positive is False or b == 1 or (b.is_number and not b.is_positive):
        raise ValueError(f"log base must be positive and not 1, got {base!r}")
    return b


def log_b(value, base=sp.E) -> sp.Expr:
    """``log_b(value) = ln(value) / ln(b)``."""
    b = log_base(base)
    return sp.log(value) if b == sp.E else sp.log(value) / sp.log(b)


def xlogy(weight, value, base=sp.E) -> sp.Expr:
    """``weight * log_b(value)``, and exactly 0 where ``weight`` is 0 (``0 log 0 = 0``)."""
    weight = as_expr(weight, "weight")
    if weight.is_zero:
        return sp.S.Zero
    return weight * log_b(value, base)


def _check_probabilities(p: Vector, name: str) -> None:
    if isinstance(p, tuple):
        for idx, v in enumerate(p):
            if v.is_number and v.is_real and (v < 0 or v > 1):
                raise ValueError(f"{name}[{idx}] = {v} is not a probability: it must lie in [0, 1]")


def _probability_vector(p, name: str) -> Vector:
    p = as_vector(p, name)
    _check_probabilities(p, name)
    return p


def _probability(p, name: str = "p") -> sp.Expr:
    value = as_expr(p, name)
    if value.is_number and value.is_real and (value < 0 or value > 1):
        raise ValueError(f"{name} = {value} is not a probability: it must lie in [0, 1]")
    return value


def self_information(p, base=sp.E) -> sp.Expr:
    r"""Self-information (surprisal) :math:`I(p) = -\log_b p`."""
    return -log_b(_probability(p), base)


def entropy(p, base=sp.E) -> sp.Expr:
    r"""Shannon entropy :math:`H(p) = -\sum_i p_i \log_b p_i`: the expected self-information."""
    p = _probability_vector(p, "p")
    return -class_sum(lambda m: xlogy(p[m], p[m], base), p)


def binary_entropy(p, base=sp.E) -> sp.Expr:
    r"""Binary entropy :math:`H_2(p) = -p \log_b p - (1 - p) \log_b (1 - p)`."""
    p = _probability(p)
    return -xlogy(p, p, base) - xlogy(1 - p, 1 - p, base)


def cross_entropy(p, q, base=sp.E) -> sp.Expr:
    r"""Cross-entropy :math:`H(p, q) = -\sum_i p_i \log_b q_i` (p: target, q: prediction)."""
    p, q = _probability_vector(p, "p"), _probability_vector(q, "q")
    return -class_sum(lambda m: xlogy(p[m], q[m], base), p, q)


def kl_divergence(p, q, base=sp.E) -> sp.Expr:
    r"""Kullback-Leibler divergence :math:`D(p \| q) = \sum_i p_i \log_b (p_i / q_i)`."""
    p, q = _probability_vector(p, "p"), _probability_vector(q, "q")
    return class_sum(lambda m: xlogy(p[m], p[m] / q[m], base), p, q)


def uniform(size) -> Vector:
    r"""The uniform distribution :math:`(1/n, \dots, 1/n)` over ``size`` classes (a number or ``n``)."""
    size = as_expr(size, "size") if not isinstance(size, int) else size
    if isinstance(size, sp.Integer):
        size = int(size)
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"uniform needs at least one class, got {size}")
        return tuple([sp.Rational(1, size)] * size)
    if size.is_integer is not True or size.is_positive is False:
        raise ValueError(f"uniform(size): the number of classes must be a positive integer, got {size}")
    return MappedVector(lambda m: 1 / size, size)


def jensen_shannon(p, q, base=sp.E) -> sp.Expr:
    r"""Jensen-Shannon divergence :math:`\tfrac12 D(p \| m) + \tfrac12 D(q \| m)`, :math:`m = (p + q)/2`
    (Lin 1991): symmetric, between 0 and :math:`\log_b 2`."""
    p, q = _probability_vector(p, "p"), _probability_vector(q, "q")
    size = common_length(p, q)
    middle = MappedVector(lambda m: (p[m] + q[m]) / 2, size)
    if isinstance(size, int):
        middle = tuple(middle[m] for m in range(size))
    return (kl_divergence(p, middle, base) + kl_divergence(q, middle, base)) / 2
