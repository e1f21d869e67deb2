"""Printers for lowered expressions: SymPy's NumPy, PyTorch and C99 printers, subclassed.

The array printers (NumPy, Torch) print an element expression of the class axis as a whole-array
expression: ``z[a]`` is the (R, C) array ``z``, a row value is an (R, 1) array, a class weight
``w[a]`` the (C,) array ``w``. They order products and sums so that the small factors (rows,
classes, scalars) combine first and each dense (R, C) operation happens once.

The C printer prints one element: ``z[a]`` is ``z[a]`` with ``z`` the row's pointer. Its float32
variant uses the ``float`` functions (``expf``) and literals (``1.0F``) through SymPy's
``type_aliases``; ``contract=False`` keeps ``a*b + c`` from becoming ``fma`` calls.

Known nodes (one method each): ``sigmoid`` (``1/(1 + exp(-x))``: exact in IEEE arithmetic at
both ends), ``log1p``, ``Max``/``Min`` (two arguments), ``Piecewise`` (a select). ``Sum`` and the
class-axis nodes must be lowered away first: printing them is an error.
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

_DENSE = ("dense",)


class _ArrayLayout:
    """Shared by the array printers: argument names, and shape-aware ``Mul`` / ``Add``.

    Settings: ``names`` maps IndexedBase and Symbol objects to code names; ``shapes`` maps symbols
    to ``dense`` / ``row`` / ``classes`` / ``scalar``; ``array_bases`` the IndexedBases that are
    (R, C) rows (the others are (C,) class vectors).
    """

    _print_Sum = CodePrinter._print_not_supported
    _print_ClassAxisNode = CodePrinter._print_not_supported

    def _select(self, cond: str, value: str, otherwise: str) -> str:  # pragma: no cover - each printer's own
        raise NotImplementedError

    def _print_Piecewise(self, expr):
        """Nested selects (``where`` / ``?:``), innermost the final ``(value, True)`` branch."""
        if expr.args[-1].cond != True:  # noqa: E712 - SymPy's true
            raise ValueError(f"a Piecewise needs a final (value, True) branch: {expr}")
        out = self._print(expr.args[-1].expr)
        for value, cond in reversed(expr.args[:-1]):
            out = self._select(self._print(cond), self._print(value), out)
        return out

    def _name(self, obj):
        return self._settings["names"].get(obj)

    def _print_Indexed(self, expr):
        name = self._name(expr.base)
        if name is None:
            raise ValueError(f"{expr.base} is not an argument")
        return name

    def _print_Symbol(self, expr):
        name = self._name(expr)
        return name if name is not None else super()._print_Symbol(expr)

    def _is_dense(self, expr) -> bool:
        shapes, bases = self._settings["shapes"], self._settings["array_bases"]
        for atom in expr.atoms(sp.Symbol, sp.Indexed):
            if isinstance(atom, sp.Indexed):
                if atom.base in bases:
                    return True
            elif shapes.get(atom) in _DENSE:
                return True
        return False

    def _print_Mul(self, expr):
        big = [f for f in expr.args if self._is_dense(f)]
        small = [f for f in expr.args if not self._is_dense(f)]
        if not big or len(small) < 2:
            return super()._print_Mul(expr)
        return f"{self.parenthesize(sp.Mul(*big), PRECEDENCE['Mul'])}*({self._print(sp.Mul(*small))})"

    def _print_And(self, expr):
        """Element-wise ``&`` of boolean arrays (a local target's ``(t >= 0) & (t <= n - 1)``)."""
        return " & ".join(self._print(arg) if isinstance(arg, sp.core.relational.Relational)  # printed atomic
                          else f"({self._print(arg)})" for arg in expr.args)

    def _print_Add(self, expr, order=None):
        big = [t for t in expr.args if self._is_dense(t)]
        small = [t for t in expr.args if not self._is_dense(t)]
        if not big or len(small) < 2:
            return super()._print_Add(expr, order=order)
        return f"{super()._print_Add(sp.Add(*big), order=order)} + ({self._print(sp.Add(*small))})"


class NumpyArrayPrinter(_ArrayLayout, NumPyPrinter):
    """Whole-array NumPy expressions (``numpy.exp(-m + z)``)."""

    _default_settings = {**NumPyPrinter._default_settings, "names": {}, "shapes": {}, "array_bases": set()}

    def _print_sigmoid(self, expr):
        return f"1/(1 + {self._module_format('numpy.exp')}({self._print(-expr.args[0])}))"

    def _print_Max(self, expr):
        return self._binary("numpy.maximum", expr)

    def _print_Min(self, expr):
        return self._binary("numpy.minimum", expr)

    def _binary(self, function, expr):
        first, *rest = expr.args
        out = self._print(first)
        for arg in rest:
            out = f"{self._module_format(function)}({out}, {self._print(arg)})"
        return out

    def _select(self, cond: str, value: str, otherwise: str) -> str:
        return f"{self._module_format('numpy.where')}({cond}, {value}, {otherwise})"


class CElementPrinter(_ArrayLayout, C99CodePrinter):
    """One element of a C kernel: ``z[a]``, scalars by name; ``real`` is ``float`` or ``double``.

    Products and sums group their loop-invariant factors (``x0*(w_c/s3)``), so the compiler
    hoists them out of the class-axis loop (without -ffast-math it may not reassociate).
    """

    _default_settings = {**C99CodePrinter._default_settings, "names": {}, "contract": False,
                         "shapes": {}, "array_bases": set()}

    _print_Sum = CodePrinter._print_not_supported
    _print_ClassAxisNode = CodePrinter._print_not_supported
    _print_And = CodePrinter._print_And  # ``&&``, not the array printers' element-wise ``&``

    def __init__(self, settings=None):
        settings = dict(settings or {})
        ctype = settings.pop("ctype", "double")
        settings.setdefault("type_aliases", {real: float32 if ctype == "float" else float64})
        super().__init__(settings)
        self.ctype = ctype

    def _print_Indexed(self, expr):
        name = self._settings["names"].get(expr.base, str(expr.base.label))
        return f"{name}[{self._print(expr.indices[0])}]"

    def _print_Symbol(self, expr):
        name = self._settings["names"].get(expr)
        return name if name is not None else super()._print_Symbol(expr)

    def _print_sigmoid(self, expr):
        return f"{self._print(sp.S.One)}/({self._print(sp.S.One)} + {self._print(sp.exp(-expr.args[0]))})"

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _select(self, cond: str, value: str, otherwise: str) -> str:
        return f"({cond} ? {value} : {otherwise})"


def c_printer(ctype: str, names: dict, shapes: dict, bases) -> CElementPrinter:
    """The C printer for ``float`` or ``double`` kernels; ``shapes``/``bases`` tell which
    symbols vary along the class axis (``dense``)."""
    return CElementPrinter({"ctype": ctype, "names": names, "shapes": shapes, "array_bases": set(bases)})
