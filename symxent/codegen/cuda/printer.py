"""The CUDA printer: one element expression as fp32 CUDA C++.

It is the generator's C printer (:class:`symxent.codegen.printers.CElementPrinter` with
``ctype="float"``: ``1.0F`` literals, ``logf``/``log1pf``/``fmaxf``) with CUDA's spellings:

- ``exp(x) -> sx_exp(x)`` (``symxent/cuda/common.cuh``): ``ex2.approx.ftz`` of ``x * log2(e)``, one multiply and
  one ``MUFU.EX2`` (``__expf`` is the same approximation plus four instructions of denormal handling). The
  exponents printed are those of the stable rewrites (``exp(z_a - m) <= 1``, ``exp(-|x|)``, the sigmoid's
  ``exp(-x)``), where its error (2 ulp plus about 1 ulp per unit of ``|x|``) is far below one bf16 / fp16 rounding
  and within the fp32 tolerances of the tests; results below 2^-126 are 0.
- ``exp2(x) -> sx_exp2(x)``: one ``MUFU.EX2``; the row kernels' element math has every ``exp`` in this form
  (the rewrite ``exp_as_exp2``: ``exp(z - m) = exp2(log2(e)*(z - m))``, the constant ``log2e`` printed as
  ``1.44269504F``).
- ``x**2 -> x*x`` (and 3, 4; negative small powers as ``1.0F/(...)``, or ``a/(x*x)`` in a product),
  instead of ``powf``.
- an element of a row or class vector at the class-axis index (``z[a]``, ``w[a]``) is a local
  of the kernel: ``z_a``, ``w_a`` (setting ``elements``: IndexedBase -> local name).

Nodes the kernels cannot print (``Sum``, class-axis nodes, ``KroneckerDelta``) raise: the
lowering must have removed them.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.precedence import PRECEDENCE

from ..printers import CElementPrinter
from ..rewrites import LOG2E

#: integer exponents printed as repeated multiplication
SMALL_POWERS = (2, 3, 4)


class CudaPrinter(CElementPrinter):
    """fp32 CUDA C++ for one element; ``elements`` maps row/class IndexedBases to local names."""

    _default_settings = {**CElementPrinter._default_settings, "elements": {}}

    _print_KroneckerDelta = CodePrinter._print_not_supported

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings["ctype"] = "float"
        super().__init__(settings)

    def _print_exp(self, expr):
        return f"sx_exp({self._print(expr.args[0])})"

    def _print_exp2(self, expr):
        return f"sx_exp2({self._print(expr.args[0])})"

    def _print_Symbol(self, expr):
        return "1.44269504F" if expr == LOG2E else super()._print_Symbol(expr)

    def _print_Indexed(self, expr):
        local = self._settings["elements"].get(expr.base)
        if local is None:
            raise ValueError(f"{expr}: {expr.base} has no element local in this kernel function")
        return local

    def _print_Mul(self, expr):
        """``a/(s*s)``: a product whose only denominator is a small power. SymPy's Mul printer writes a single
        denominator factor without parentheses (right for ``powf(s, 2)``), which for the product that
        :meth:`_print_Pow` prints would read ``a/s*s``."""
        inverse = [f for f in expr.args if f.is_Pow and f.exp.is_Integer and f.exp < 0]
        if len(inverse) != 1 or -int(inverse[0].exp) not in SMALL_POWERS:
            return super()._print_Mul(expr)
        numerator = sp.Mul(*[f for f in expr.args if f is not inverse[0]])
        return f"{self.parenthesize(numerator, PRECEDENCE['Mul'])}/({self._print(1 / inverse[0])})"

    def _print_Pow(self, expr):
        base, exponent = expr.as_base_exp()
        if exponent.is_Integer and abs(int(exponent)) in SMALL_POWERS:
            factor = self.parenthesize(base, PRECEDENCE["Mul"])
            product = "*".join([factor] * abs(int(exponent)))
            return product if exponent > 0 else f"1.0F/({product})"
        return super()._print_Pow(expr)


def cuda_printer(elements: dict, shapes=None, bases=()) -> CudaPrinter:
    """The printer for one kernel function: ``elements`` names its ``v[a]`` locals; ``shapes`` (symbol ->
    ``dense`` / ``row`` / ...) and ``bases`` (the IndexedBases that vary along the class axis) let the
    parent printer group loop-invariant factors (``x1*(w_c/s3)``: one multiply per element)."""
    return CudaPrinter({"elements": dict(elements), "strict": True, "shapes": dict(shapes or {}),
                        "array_bases": set(bases)})
