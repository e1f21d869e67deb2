"""Elementary functions of the cross-entropy family as SymPy functions that carry their calculus.

Each class knows its derivative (``fdiff``), how to rewrite itself in ``exp``/``log``
(``.rewrite(log)``, ``.rewrite(exp)``), and evaluates numerically at any precision.
"""
from __future__ import annotations

import sympy as sp
from sympy.core.evalf import prec_to_dps


class _Elementary(sp.Function):
    """A one-argument function defined by an ``exp``/``log`` formula (``_formula``)."""

    nargs = 1

    @classmethod
    def _formula(cls, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return self._formula(x)

    _eval_rewrite_as_log = _eval_rewrite_as_exp

    def _eval_evalf(self, prec):
        arg = self.args[0]._eval_evalf(prec)
        if arg is None or not arg.is_number:
            return None
        return self._formula(arg).evalf(prec_to_dps(prec))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_finite(self):
        return self.args[0].is_finite if self.args[0].is_real else None


class sigmoid(_Elementary):
    r"""Logistic sigmoid :math:`\sigma(x) = 1 / (1 + e^{-x})`; :math:`\sigma' = \sigma (1 - \sigma)`."""

    @classmethod
    def _formula(cls, x):
        return 1 / (1 + sp.exp(-x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.S.Half
        if x is sp.S.Infinity:
            return sp.S.One
        if x is sp.S.NegativeInfinity:
            return sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None


class softplus(_Elementary):
    r"""Softplus :math:`\log(1 + e^{x})`; stable as :math:`\max(x, 0) + \log(1 + e^{-|x|})`.

    It exists numerically because :math:`\log(1 + e^x)` overflows for large ``x``.
    :math:`\mathrm{softplus}' = \sigma`.
    """

    @classmethod
    def _formula(cls, x):
        return sp.log(1 + sp.exp(x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.log(2)
        if x is sp.S.NegativeInfinity:
            return sp.S.Zero
        if x is sp.S.Infinity:
            return sp.S.Infinity
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None


class log_sigmoid(_Elementary):
    r"""Log-sigmoid :math:`\log \sigma(x) = -\mathrm{softplus}(-x)`; derivative :math:`\sigma(-x)`."""

    @classmethod
    def _formula(cls, x):
        return -sp.log(1 + sp.exp(-x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return -sp.log(2)
        return None

    def fdiff(self, argindex=1):
        return sigmoid(-self.args[0])

    def _eval_rewrite_as_softplus(self, x, **kwargs):
        return -softplus(-x)

    def _eval_is_negative(self):
        return True if self.args[0].is_real else None


def stable_softplus(x):
    r"""The overflow-free form :math:`\max(x, 0) + \log(1 + e^{-|x|})` of softplus."""
    return sp.Max(x, 0) + sp.log(1 + sp.exp(-sp.Abs(x)))


def eliminate(expr: sp.Expr) -> sp.Expr:
    """Rewrite sigmoid / softplus / log_sigmoid in terms of ``exp`` and ``log``."""
    return expr.replace(
        lambda e: isinstance(e, _Elementary), lambda e: e._formula(e.args[0])
    )
