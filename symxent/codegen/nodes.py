"""Marker nodes: sub-trees over the class axis that the printers know how to print.

A derived row loss is written with ``Sum(..., (i, 0, n - 1))`` and ``Indexed`` elements. Before
printing, :func:`recognise` names the sub-trees that have a stable printed form:

- ``Sum(exp(z[j]), (j, 0, n - 1))  ->  exp(LogSumExp(z))``: the definition of logsumexp, so that
  ``log`` of it is ``LogSumExp(z)`` and softmax is ``exp(z[k] - LogSumExp(z))``;
- ``RowMax(z)`` (introduced by the ``logsumexp_shift`` rule, not recognised) is the row maximum.

``Sum`` over the class axis stays a ``Sum``: it is printed as a row reduction. A node's argument is
the element ``f(j)`` of the row it reduces, written with the bound index :data:`BOUND`
(``LogSumExp(z[j_])``; ``LogSumExp(cap*tanh(z[j_]/cap))`` for soft-capped logits).
"""
from __future__ import annotations

import sympy as sp

#: the bound class index of a node's element expression
BOUND = sp.Symbol("j_", integer=True, nonnegative=True)


class ClassAxisNode(sp.Function):
    """A reduction over the class axis of the row whose element ``j`` is ``args[0]`` (in :data:`BOUND`)."""

    nargs = 1
    is_real = True

    @property
    def element(self) -> sp.Expr:
        return self.args[0]

    def element_at(self, index) -> sp.Expr:
        return self.element.xreplace({BOUND: index})

    @property
    def free_symbols(self):
        return self.element.free_symbols - {BOUND}

    def _sympystr(self, printer):
        return f"{type(self).__name__}({printer._print(self.element)})"

    def _latex(self, printer):
        return rf"\operatorname{{{self._latex_name}}}_j({printer._print(self.element)})"


class LogSumExp(ClassAxisNode):
    r""":math:`\log \sum_j e^{z_j}` of the row ``z`` (the softmax normaliser in log space)."""

    _latex_name = "logsumexp"


class RowMax(ClassAxisNode):
    r""":math:`\max_j z_j` of the row ``z``: the shift that keeps ``exp`` from overflowing."""

    _latex_name = "max"


def is_class_sum(expr, size) -> bool:
    """``Sum(body, (i, 0, size - 1))`` with one limit: a sum over the class axis."""
    if not isinstance(expr, sp.Sum) or len(expr.limits) != 1:
        return False
    _, lower, upper = expr.limits[0]
    return lower == 0 and sp.simplify(upper - (size - 1)) == 0


def _sum_of_exp_element(expr, size):
    """``f(BOUND)`` if ``expr`` is ``Sum(exp(f(j)), (j, 0, size - 1))``, else None."""
    if not is_class_sum(expr, size):
        return None
    body, index = expr.function, expr.limits[0][0]
    if isinstance(body, sp.exp) and body.has(index):
        return body.args[0].xreplace({index: BOUND})
    return None


def recognise(expr: sp.Expr, size) -> sp.Expr:
    """``Sum(exp(f(j)), (j, 0, n - 1)) -> exp(LogSumExp(f(j_)))`` everywhere in ``expr``.

    ``log(exp(LogSumExp(z)))`` is ``LogSumExp(z)`` automatically (it is real), so
    ``log_softmax(z)_k = z[k] - LogSumExp(z)`` and ``softmax(z)_k = exp(z[k] - LogSumExp(z))``
    (SymPy merges ``exp(a) / exp(b)`` only where the exponents combine; see ``merge_exp``).
    """
    expr = expr.replace(lambda e: _sum_of_exp_element(e, size) is not None,
                        lambda e: sp.exp(LogSumExp(_sum_of_exp_element(e, size))))
    return merge_exp(expr)


def merge_exp(expr: sp.Expr) -> sp.Expr:
    """``exp(a) * exp(b) -> exp(a + b)`` and ``x**a * x**b -> x**(a + b)`` (laws of exponents), so that
    ``exp(z[k]) / exp(L)`` reads ``exp(z[k] - L)`` and ``(1 - p)**g * (... / (1 - p) + ...)`` reads
    ``(1 - p)**(g - 1) * ... + ...`` (finite where ``p = 1``)."""
    return sp.powsimp(expr.replace(lambda e: e.is_Mul, _absorb_powers), deep=True, combine="exp")


def _absorb_powers(mul):
    """``x**g * (u / x + v) -> x**(g - 1) * u + x**g * v`` for a symbolic power ``g``."""
    powers = [f for f in mul.args if f.is_Pow and not f.exp.is_number]
    for power in powers:
        inverse = 1 / power.base
        for factor in mul.args:
            if factor.is_Add and any(inverse in sp.Mul.make_args(term) for term in factor.args):
                rest = sp.Mul(*[f for f in mul.args if f is not power and f is not factor])
                terms = [sp.powsimp(power * term, combine="exp") for term in factor.args]
                return rest * sp.Add(*terms)
    return mul
