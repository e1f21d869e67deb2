"""The PyTorch printer, in its own module: SymPy's torch printer imports torch, so only the torch
target loads it (printing NumPy, C or CUDA code never imports torch)."""
from __future__ import annotations

from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pytorch import TorchPrinter

from .printers import _ArrayLayout


class TorchArrayPrinter(_ArrayLayout, TorchPrinter):
    """Whole-tensor PyTorch expressions. Fixes SymPy's: ``Max(x, 0)`` (printed ``torch.max(0, x)``),
    ``log1p``, ``sigmoid``, ``Piecewise``; the rest is SymPy's ``mapping``."""

    _default_settings = {**TorchPrinter._default_settings, "names": {}, "shapes": {}, "array_bases": set()}

    def _print_log1p(self, expr):
        return f"{self._module_format('torch.log1p')}({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr):
        return f"{self._module_format('torch.sigmoid')}({self._print(expr.args[0])})"

    def _clamp_or(self, expr, bound, function):
        numbers = [a for a in expr.args if a.is_number]
        others = [a for a in expr.args if not a.is_number]
        out = self._print(others[0])
        for arg in others[1:]:
            out = f"{self._module_format(function)}({out}, {self._print(arg)})"
        for number in numbers:
            out = f"{self._module_format('torch.clamp')}({out}, {bound}={self._print(number)})"
        return out

    def _print_Max(self, expr):
        return self._clamp_or(expr, "min", "torch.maximum")

    def _print_Min(self, expr):
        return self._clamp_or(expr, "max", "torch.minimum")

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.as_base_exp()
        if exponent == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Pow'])}"
        return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**{self.parenthesize(exponent, PRECEDENCE['Pow'])}"

    def _select(self, cond: str, value: str, otherwise: str) -> str:
        return f"{self._module_format('torch.where')}({cond}, {value}, {otherwise})"

    def _print_Relational(self, expr):
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        return f"({self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)})"

    def _print_Exp1(self, expr):
        return "math.e"
