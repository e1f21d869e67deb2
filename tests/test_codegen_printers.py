"""The printer subclasses: SymPy's printer bugs fixed, stable nodes printed, small factors grouped."""
import math

import numpy as np
import pytest
import sympy as sp
from sympy.codegen.cfunctions import log1p

from symxent.codegen.printers import CElementPrinter, NumpyArrayPrinter, c_printer
from symxent.definitions import sigmoid, vector

x, m, s = sp.symbols("x m s", real=True)
z = vector("z")
a = sp.Symbol("a", integer=True, nonnegative=True)


def numpy_printer(**shapes):
    return NumpyArrayPrinter({"names": {z.base: "z"}, "shapes": {sp.Symbol(k, real=True): v for k, v in shapes.items()},
                              "array_bases": {z.base}, "fully_qualified_modules": True})


def run_numpy(code, **values):
    return eval(code, {"numpy": np, **values})  # noqa: S307 - our own printed test expression


def test_numpy_max_min_print_as_elementwise_maximum_minimum():
    """Max(x, 0) is numpy.maximum (SymPy prints a functools.reduce over a list)."""
    p = numpy_printer()
    assert p.doprint(sp.Max(x, 0)) == "numpy.maximum(0, x)"
    assert p.doprint(sp.Min(x, 0)) == "numpy.minimum(0, x)"


@pytest.mark.parametrize("value", [-1000.0, -3.0, 0.0, 5.0, 1000.0], ids=["neg-overflow", "neg", "zero", "pos", "pos-overflow"])
def test_printed_numpy_stable_softplus_and_sigmoid_are_finite_at_extreme_inputs(value):
    """The stable softplus and the printed sigmoid give the exact values at +-1000 (no inf, no nan)."""
    p = numpy_printer()
    softplus_code = p.doprint(sp.Max(x, 0) + log1p(sp.exp(-sp.Abs(x))))
    sigmoid_code = p.doprint(sigmoid(x))
    with np.errstate(over="ignore"):
        got_softplus = run_numpy(softplus_code, x=np.float64(value))
        got_sigmoid = run_numpy(sigmoid_code, x=np.float64(value))
    expected_softplus = max(value, 0) + math.log1p(math.exp(-abs(value)))
    expected_sigmoid = 1 / (1 + math.exp(-value)) if value > -700 else 0.0
    assert got_softplus == pytest.approx(expected_softplus, rel=1e-15)
    assert got_sigmoid == pytest.approx(expected_sigmoid, rel=1e-15, abs=1e-300)


def test_numpy_products_combine_row_factors_before_the_dense_array():
    """w_c * x0 / s0 prints as x0*(w_c/s0): one pass over the (R, C) array, not two."""
    p = numpy_printer(x0="dense", w_c="row", s0="row")
    x0, w_c, s0 = sp.symbols("x0 w_c s0", real=True)
    assert p.doprint(w_c * x0 / s0) == "x0*(w_c/s0)"
    assert p.doprint(z.base[a] * w_c / s0) == "z*(w_c/s0)"


def test_numpy_piecewise_prints_a_where_with_the_default_last():
    """Piecewise((0, x <= -100), (1/x, True)) -> numpy.where(x <= -100, 0, 1/x), evaluated right."""
    code = numpy_printer().doprint(sp.Piecewise((0, x <= -100), (1 / x, True)))
    assert code.startswith("numpy.where(")
    got = run_numpy(code, x=np.array([-200.0, 2.0]))
    assert list(got) == [0.0, 0.5]


def test_printing_an_unlowered_sum_is_an_error():
    """A Sum must become a reduction statement first; the printer refuses it."""
    with pytest.raises(Exception, match="Sum|not supported"):
        numpy_printer().doprint(sp.Sum(z[a], (a, 0, 3)))


def test_torch_printer_fixes_sympy_max_and_prints_log1p_sigmoid():
    """SymPy's TorchPrinter prints Max(x, 0) as torch.max(0, x) (a TypeError) and lacks log1p."""
    torch = pytest.importorskip("torch")
    from symxent.codegen.printers_torch import TorchArrayPrinter
    p = TorchArrayPrinter({"names": {}, "shapes": {}, "array_bases": set()})
    code = p.doprint(sp.Max(x, 0) + log1p(sp.exp(-sp.Abs(x))) + sigmoid(x))
    assert "torch.clamp(x, min=0)" in code and "torch.log1p" in code and "torch.sigmoid(x)" in code
    value = torch.tensor([-1000.0, 0.0, 1000.0], dtype=torch.float64)
    got = eval(code, {"torch": torch, "x": value})  # noqa: S307 - our own printed test expression
    expected = torch.nn.functional.softplus(value) + torch.sigmoid(value)
    assert torch.allclose(got, expected, rtol=1e-15, atol=0)


def test_c_float_printer_uses_float_functions_and_literals():
    """float kernels call expf/logf/log1pf and write 1.0F literals; double kernels exp/log."""
    expr = sp.Rational(1, 2) * sp.exp(x - m) + sp.log(s) + log1p(x)
    f32 = c_printer("float", {}, {}, []).doprint(expr)
    f64 = c_printer("double", {}, {}, []).doprint(expr)
    assert "expf(" in f32 and "logf(" in f32 and "log1pf(" in f32 and "1.0F/2.0F" in f32
    assert "expf(" not in f64 and "exp(" in f64


def test_c_printer_indexes_rows_and_groups_loop_invariant_factors():
    """z[a] prints as z[a] (no shape needed), and the row factors of a product are grouped."""
    w_c, s0 = sp.symbols("w_c s0", real=True)
    p = c_printer("double", {}, {}, [z.base])
    assert p.doprint(sp.exp(z[a] - m) * w_c / s0) == "exp(-m + z[a])*(w_c/s0)"


def test_c_piecewise_prints_a_conditional_expression():
    """Piecewise in an element prints as (cond ? a : b) (SymPy's C printer needs an assignment)."""
    p = CElementPrinter({"ctype": "double"})
    assert p.doprint(sp.Piecewise((0, x <= -100), (1 / x, True))) == "((x <= -100) ? 0 : 1.0/x)"
