"""Numbers for the prover: both sides of a claim evaluated at a point, two independent ways.

- :func:`evaluate`: a direct walk of the expression with mpmath at ``DIGITS`` digits; a ``Sum`` is
  iterated over its range, a vector element looked up, ``max(z)`` taken over the elements. Fast: it
  screens every sampled point.
- :func:`evaluate_exact`: the claim instantiated at the point (``n`` and the indices substituted,
  every ``Sum`` written out, every derivative taken of the written-out expression by SymPy) and
  evaluated by SymPy's adaptive ``evalf``. It confirms every counterexample before it is printed.

A value that is undefined, infinite or not real (a log of a negative number, 0 / 0) is ``None``:
such a point says nothing about the claim.
"""
from __future__ import annotations

from typing import Optional

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..definitions.functions import log_sigmoid, sigmoid, softplus
from ..definitions.softmax import vector_max, vector_min

#: digits of every numeric evaluation
DIGITS = 50
#: the most digits SymPy's evalf may work with internally (exp(-1000) next to 1 needs about 440)
MAX_WORKING_DIGITS = 2000
#: |lhs - rhs| above this times max(1, |lhs|, |rhs|) is "clearly not equal"
RELATIVE_TOLERANCE = mpmath.mpf(10) ** -30


class Undefined(Exception):
    """The expression has no real value at the point (a log of a negative number, a vector element
    outside the vector, a number too large to represent)."""


_Undefined = Undefined
#: exp of more than this is treated as out of range (e^100000 ~ 10^43429): beyond, mpmath's work explodes
MAX_EXP_ARGUMENT = 100_000


class _NeedsSymPy(Exception):
    """A node the direct walk does not know (a derivative, an unusual function)."""


def _real(value):
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > mpmath.mpf(10) ** (-DIGITS + 5) * max(1, abs(value)):
            raise _Undefined
        value = value.real
    if not mpmath.isfinite(value):
        raise _Undefined
    return value


def _log(x):
    if x <= 0:
        raise _Undefined
    return mpmath.log(x)


def _exp(x):
    if x > MAX_EXP_ARGUMENT:
        raise _Undefined
    return mpmath.exp(x)


_UNARY = {
    sp.exp: _exp, sp.log: _log, sp.tanh: mpmath.tanh, sp.sinh: mpmath.sinh, sp.cosh: mpmath.cosh,
    sp.sin: mpmath.sin, sp.cos: mpmath.cos, sp.Abs: abs, sp.sign: mpmath.sign,
    sigmoid: lambda x: 1 / (1 + mpmath.exp(-x)),
    softplus: lambda x: mpmath.log1p(mpmath.exp(x)) if x < 30 else x + mpmath.log1p(mpmath.exp(-x)),
    log_sigmoid: lambda x: -(mpmath.log1p(mpmath.exp(-x)) if x > -30 else -x + mpmath.log1p(mpmath.exp(x))),
    log1p: lambda x: _log(1 + x), expm1: mpmath.expm1,
}


def _walk(expr, env: dict):
    """The value of ``expr``; ``env`` maps symbols (and ``(base, positions)`` for vector elements) to
    numbers."""
    if expr.is_Integer:
        return mpmath.mpf(int(expr))
    if expr.is_Rational:
        return mpmath.mpf(expr.p) / expr.q
    if expr.is_Float:
        return mpmath.mpf(expr._mpf_)
    if expr.is_NumberSymbol or expr is sp.S.ImaginaryUnit:
        return _real(mpmath.mpmathify(expr.evalf(DIGITS + 10)))
    if isinstance(expr, sp.Symbol):
        try:
            return env[expr]
        except KeyError:
            raise _NeedsSymPy from None
    if isinstance(expr, sp.Indexed):
        positions = tuple(int(_walk(index, env)) for index in expr.indices)
        try:
            return env[(expr.base, positions)]  # a Point draws an element at its first use
        except KeyError:
            raise _NeedsSymPy from None
    if isinstance(expr, sp.Add):
        return _real(mpmath.fsum(_walk(a, env) for a in expr.args))
    if isinstance(expr, sp.Mul):
        value = mpmath.mpf(1)
        for a in expr.args:
            value *= _walk(a, env)
        return _real(value)
    if isinstance(expr, sp.Pow):
        base, exponent = _walk(expr.base, env), _walk(expr.exp, env)
        if base == 0 and exponent < 0:
            raise _Undefined
        if base != 0 and abs(exponent) * abs(mpmath.log(abs(base))) > MAX_EXP_ARGUMENT:
            raise _Undefined
        return _real(mpmath.power(base, exponent))
    if isinstance(expr, sp.Sum):
        return _real(_sum(expr.function, list(expr.limits), env))
    if isinstance(expr, sp.KroneckerDelta):
        return mpmath.mpf(1 if _walk(expr.args[0], env) == _walk(expr.args[1], env) else 0)
    if isinstance(expr, (sp.Max, sp.Min)):
        values = [_walk(a, env) for a in expr.args]
        return max(values) if isinstance(expr, sp.Max) else min(values)
    if isinstance(expr, (vector_max, vector_min)):
        base, size = expr.args[0], int(_walk(expr.args[1], env))
        values = [_walk(base[m], env) for m in range(size)]
        return max(values) if isinstance(expr, vector_max) else min(values)
    if isinstance(expr, sp.Piecewise):
        for value, condition in expr.args:
            if _holds(condition, env):
                return _walk(value, env)
        raise _Undefined
    if isinstance(expr, sp.Function) and type(expr) in _UNARY and len(expr.args) == 1:
        return _real(_UNARY[type(expr)](_walk(expr.args[0], env)))
    raise _NeedsSymPy


def _sum(body, limits: list, env: dict):
    """The sum over the limits, outermost (the last) first: an inner limit may use an outer index. The
    index is set in ``env`` itself (a Point draws elements at their first use) and removed after."""
    *inner, (index, low, high) = limits
    lo, hi = int(_walk(low, env)), int(_walk(high, env))
    total = []
    try:
        for m in range(lo, hi + 1):
            env[index] = mpmath.mpf(m)
            total.append(_sum(body, inner, env) if inner else _walk(body, env))
    finally:
        env.pop(index, None)
    return mpmath.fsum(total)


_RELATIONS = {sp.StrictLessThan: lambda a, b: a < b, sp.LessThan: lambda a, b: a <= b,
              sp.StrictGreaterThan: lambda a, b: a > b, sp.GreaterThan: lambda a, b: a >= b,
              sp.Equality: lambda a, b: a == b, sp.Unequality: lambda a, b: a != b}


def _holds(condition, env) -> bool:
    if condition is sp.true:
        return True
    if condition is sp.false:
        return False
    if isinstance(condition, sp.And):
        return all(_holds(c, env) for c in condition.args)
    if isinstance(condition, sp.Or):
        return any(_holds(c, env) for c in condition.args)
    if isinstance(condition, sp.Not):
        return not _holds(condition.args[0], env)
    if type(condition) in _RELATIONS:
        return _RELATIONS[type(condition)](_walk(condition.lhs, env), _walk(condition.rhs, env))
    raise _NeedsSymPy


def evaluate(expr, env: dict, digits: int = DIGITS + 10) -> Optional[mpmath.mpf]:
    """``expr`` at the point ``env`` (see :func:`_walk`), at ``digits`` digits; None where it is
    undefined. Raises ``LookupError`` for what the walk cannot do (use :func:`evaluate_exact`)."""
    with mpmath.workdps(digits):
        try:
            return +_walk(expr, env)
        except (_Undefined, ZeroDivisionError, ValueError, OverflowError):
            return None
        except _NeedsSymPy:
            raise LookupError("needs SymPy") from None


def _evalf(expr, digits: int) -> Optional[mpmath.mpf]:
    try:
        value = sp.N(expr, digits, maxn=MAX_WORKING_DIGITS)
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    try:
        with mpmath.workdps(digits):
            return _real(mpmath.mpmathify(value._to_mpmath(mpmath.mp.prec)))
    except (TypeError, ValueError, AttributeError, _Undefined):
        return None


def sympy_number(expr, digits: int = DIGITS) -> Optional[mpmath.mpf]:
    """A constant SymPy expression at ``digits`` digits by ``evalf``, trusted only when a second
    evaluation at twice the digits agrees (SymPy's evalf can lose a cancellation silently: at its
    default working precision ``log(1 - 1/(1 + exp(-623)))`` comes out as -458.9, not -623); None where
    it is undefined, infinite, not real, or the two disagree."""
    first, second = _evalf(expr, digits), _evalf(expr, 2 * digits)
    if first is None or second is None:
        return None
    with mpmath.workdps(2 * digits):
        if abs(first - second) > mpmath.mpf(10) ** (10 - digits) * max(1, abs(second)):
            return None
    return second


def evaluate_exact(expr, size, indices: dict, values: dict) -> Optional[mpmath.mpf]:
    """``expr`` instantiated (``size`` for every length symbol, ``indices`` for the free class indices),
    written out (``doit``: finite sums, derivatives of the written-out expression), then evaluated at
    ``values`` (symbols and vector elements to exact numbers) by SymPy's adaptive ``evalf``."""
    concrete = instantiate(expr, size, indices)
    return sympy_number(concrete.xreplace(values), DIGITS + 10)  # shown with DIGITS: no noise in the last one


def instantiate(expr, size, indices: dict):
    """Numbers for the length symbol(s) and the free class indices, then every finite Sum and every
    derivative written out. The expression's bound indices must be its own (``alpha_rename``), so that
    substituting a free index cannot reach into a sum."""
    from .claim import length_symbols
    replacements = dict(indices)
    if size is not None:
        replacements.update({s: sp.Integer(size) for s in length_symbols(expr)})
    return expr.xreplace({k: sp.Integer(v) for k, v in replacements.items()}).doit()


def violates(left, right, relation: str) -> bool:
    """Whether the numbers break ``left relation right`` by more than the tolerance."""
    with mpmath.workdps(DIGITS):
        tolerance = RELATIVE_TOLERANCE * max(1, abs(left), abs(right))
        gap = left - right
        if relation == "==":
            return abs(gap) > tolerance
        return gap < -tolerance if relation == ">=" else gap > tolerance


def show(value) -> str:
    """A number with :data:`DIGITS` significant digits."""
    with mpmath.workdps(DIGITS):
        return mpmath.nstr(value, DIGITS)

