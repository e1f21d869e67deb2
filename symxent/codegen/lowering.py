"""Lowering: stable output expressions -> a list of statements over rows and the class axis.

A :class:`Lowered` function is what every target prints. Its statements are, in an order where
each one only uses earlier ones:

- ``gather``: ``z_c = z[c]`` (a row's element at its target class, or a class weight ``w[c]``);
- ``max`` / ``sum``: a reduction over the class axis of an element expression in the axis index ``a``
  (``RowMax(z)`` and ``Sum(..., (i, 0, n - 1))`` of the stable expressions);
- ``assign``: a common subexpression (``sympy.cse``), e.g. ``exp(z[a] - m)`` shared by a sum and
  the gradient; and the shifted target logit ``z_c_shifted = z_c - m``, so that row values add
  ``z_c - m`` first (exact where it is small) rather than ``(-m - log(S)) + z_c``.

and its outputs are expressions in those. An output that depends on the target class through
``KroneckerDelta(a, c)`` is split into a dense part and a ``scatter`` value added at ``[row, c]``
(``softmax - onehot`` is ``softmax`` with ``-1`` added at the target).

A ``local_index`` target may be -1 (no class of this row): its gathers read nothing there (the
targets print them guarded, the value is discarded by the ``Piecewise`` of ``delta_sum``) and its
scatter adds only where :attr:`Lowered.in_row` holds.

Each statement has a *shape*: ``dense`` (one value per row and class), ``row`` (per row),
``classes`` (per class) or ``scalar``. Statements needed only by optional outputs are ``optional``.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..definitions.symbols import n as N
from .loss import KernelFunction
from .roles import Role
from .nodes import ClassAxisNode, RowMax

#: the class-axis index of every element expression after lowering
AXIS = sp.Symbol("a", integer=True, nonnegative=True)
SHAPES = ("scalar", "classes", "row", "dense")


class LoweringError(ValueError):
    """The expression has a form the kernels cannot compute (said how)."""


@dataclass(frozen=True)
class Statement:
    symbol: sp.Symbol
    op: str  # "gather" | "max" | "sum" | "assign"
    expr: sp.Expr  # gather: the Indexed element; max/sum: the element in AXIS; assign: the value
    shape: str
    optional: bool = False


@dataclass(frozen=True)
class Output:
    name: str
    expr: sp.Expr
    shape: str
    optional: bool = False
    scatter: sp.Expr | None = None  # added at [row, target] (row shape), None if none


@dataclass(frozen=True)
class Lowered:
    name: str
    function: KernelFunction
    statements: tuple
    outputs: tuple
    shapes: dict  # symbol -> shape, inputs included

    @property
    def args(self):
        return self.function.args

    @property
    def index(self):
        """The target-index symbol if the function takes one."""
        arg = self.index_arg
        return None if arg is None else arg.symbol

    @property
    def index_arg(self):
        """The target-index argument if the function takes one."""
        return next((arg for arg in self.args if arg.role.is_index), None)

    @property
    def in_row(self):
        """``(t >= 0) & (t <= n - 1)`` for a ``local_index`` target ``t`` (the rows where it is a class of
        this row, as ``delta_sum`` writes it); None when the target is always a class of the row."""
        arg = self.index_arg
        if arg is None or arg.role is not Role.LOCAL_INDEX:
            return None
        return sp.And(arg.symbol >= 0, arg.symbol <= N - 1)


def _join(*shapes) -> str:
    rows = any(s in ("row", "dense") for s in shapes)
    classes = any(s in ("classes", "dense") for s in shapes)
    return {(False, False): "scalar", (False, True): "classes", (True, False): "row", (True, True): "dense"}[
        (rows, classes)]


class _Lowerer:
    def __init__(self, function: KernelFunction):
        self.function = function
        self.elementwise = function.axis is None
        self.index = next((a.symbol for a in function.args if a.role.is_index), None)
        self.roles = {a.symbol: a.role for a in function.args if a.symbol is not None}
        self.statements: list = []
        self.by_key: dict = {}
        self.shapes: dict = {N: "scalar"}
        for symbol, role in self.roles.items():
            if isinstance(symbol, sp.Symbol):
                self.shapes[symbol] = {"elements": "dense", "index": "row", "local_index": "row",
                                       "row": "row"}.get(role, "scalar")

    # --- shapes of leaves ------------------------------------------------------------------

    def shape(self, expr) -> str:
        parts = []
        for atom in expr.atoms(sp.Symbol, sp.Indexed):
            if isinstance(atom, sp.Indexed):
                role = self.roles.get(atom.base)
                if role is None:
                    raise LoweringError(f"{atom}: {atom.base} is not an argument of {self.function.name}")
                if atom.indices != (AXIS,):
                    raise LoweringError(f"{atom}: only the class axis index can remain here")
                parts.append("dense" if role is Role.ROWS else "classes")
            elif atom in self.shapes:
                parts.append(self.shapes[atom])
            elif atom != AXIS and not isinstance(atom, sp.Dummy) and atom not in self.roles:
                # a parameter symbol of a user loss
                parts.append("scalar")
        return _join(*parts)

    def new(self, prefix, op, expr, shape) -> sp.Symbol:
        key = (op, expr)
        if key in self.by_key:
            return self.by_key[key]
        symbol = sp.Symbol(f"{prefix}{len(self.statements)}", real=True)
        self.statements.append(Statement(symbol, op, expr, shape))
        self.by_key[key] = symbol
        self.shapes[symbol] = shape
        return symbol

    # --- passes ------------------------------------------------------------------------------

    def gathers(self, expr):
        """``v[c] -> v_c`` for the target index ``c``."""
        if self.index is None:
            return expr
        def gather(e):
            name = sp.Symbol(f"{e.base.label}_c", real=True)
            if ("gather", e) not in self.by_key:
                self.statements.append(Statement(name, "gather", e, "row"))
                self.by_key[("gather", e)] = name
                self.shapes[name] = "row"
            return self.by_key[("gather", e)]
        return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.indices == (self.index,), gather)

    def reductions(self, expr):
        """``RowMax(z)`` and class-axis ``Sum`` s -> reduction statements (innermost first)."""
        if isinstance(expr, RowMax):
            body = self.reductions(expr.element_at(AXIS))
            return self.new("m", "max", body, "row" if self.shape(body) in ("row", "dense") else "scalar")
        if isinstance(expr, ClassAxisNode):
            raise LoweringError(f"{expr} is left after the stabilising rewrites")
        if isinstance(expr, sp.Sum):
            if len(expr.limits) != 1:
                raise LoweringError(f"{expr}: sums over one class index at a time only")
            index, lower, upper = expr.limits[0]
            if lower != 0 or sp.simplify(upper - (N - 1)) != 0:
                raise LoweringError(f"{expr}: a sum must run over the class axis 0..n-1")
            body = self.reductions(expr.function.xreplace({index: AXIS}))
            shape = self.shape(body)
            return self.new("s", "sum", body, "row" if shape in ("row", "dense") else "scalar")
        if not expr.args or isinstance(expr, sp.Indexed):
            return expr
        return expr.func(*[self.reductions(a) for a in expr.args])

    def shifted_gathers(self, expr):
        """``a*z_c - a*m + ... -> a*z_c_shifted + ...`` with the row statement ``z_c_shifted = z_c - m``
        for the max ``m`` of the row ``z`` (of any element ``f(z[a])``: ``f(z_c) - m``).

        Only a grouping (which terms are added first), not a rewrite: ``z_c - m`` is computed
        first, exact where it is small, instead of ``(-m - log(S)) + z_c``, which rounds at the
        scale of ``m`` (PyTorch also forms ``z - m`` first).
        """
        gathered = {s.expr.base: s.symbol for s in self.statements if s.op == "gather"}
        for s in list(self.statements):
            indexed = s.expr.atoms(sp.Indexed) if s.op == "max" else set()
            if not indexed or any(e.indices != (AXIS,) or e.base not in gathered for e in indexed):
                continue
            at_target = s.expr.xreplace({e: gathered[e.base] for e in indexed})
            difference = at_target - s.symbol
            placeholder = sp.Dummy()
            if at_target.is_Symbol:
                grouped = expr.replace(lambda e: e.is_Add, lambda e: _group(e, at_target, s.symbol, placeholder))
            else:
                grouped = expr.subs(difference, placeholder)
            if not grouped.has(placeholder):
                continue
            symbol = self.by_key.get(("assign", difference))
            if symbol is None:
                name = f"{at_target}_shifted" if at_target.is_Symbol else f"target_shifted_{s.symbol}"
                symbol = sp.Symbol(name, real=True)
                self.statements.append(Statement(symbol, "assign", difference, "row"))
                self.by_key[("assign", difference)] = symbol
                self.shapes[symbol] = "row"
            expr = grouped.xreplace({placeholder: symbol})
        return expr


def _group(add, value, shift, name):
    """``add`` with its terms ``a*value`` and ``-a*shift`` (coefficients that cancel) written
    ``a*name`` (``name`` standing for ``value - shift``); ``add`` itself if there are none."""
    def coefficient(terms, factor):
        return sp.Add(*(sp.Mul(*[f for f in sp.Mul.make_args(t) if f != factor]) for t in terms))
    terms = []
    for t in add.args:  # x*(m + L) -> x*m + x*L, so that x*m can meet -x*z_c
        holds_shift = any(f.is_Add and shift in f.args for f in sp.Mul.make_args(t))
        terms += sp.Add.make_args(sp.expand_mul(t, deep=False)) if holds_shift else [t]
    factors = [(t, sp.Mul.make_args(t)) for t in terms]
    on_value = [t for t, fs in factors if value in fs and shift not in fs]
    on_shift = [t for t, fs in factors if shift in fs and value not in fs]
    if not on_value or not on_shift:
        return add
    a = coefficient(on_value, value)
    if sp.expand(a + coefficient(on_shift, shift)) != 0:
        return add
    rest = [t for t in terms if t not in on_value and t not in on_shift]
    return sp.Add(*rest) + a * name


def split_delta(expr, axis, index):
    """``expr = dense + scatter * KroneckerDelta(axis, index)`` -> ``(dense, scatter)``; the scatter
    value is taken at ``axis = index``. An error if ``expr`` is not linear in the delta."""
    delta = sp.Dummy("delta")
    found = expr.replace(lambda e: isinstance(e, sp.KroneckerDelta) and set(e.args) == {axis, index},
                         lambda e: delta)
    if found.has(sp.KroneckerDelta):
        raise LoweringError(f"a KroneckerDelta other than delta({axis}, {index}) is left in {expr}")
    if not found.has(delta):
        return expr, None
    scatter = sp.diff(found, delta)
    if scatter.has(delta):
        raise LoweringError(f"{expr} is not linear in KroneckerDelta({axis}, {index})")
    dense = found.xreplace({delta: 0})
    return dense, scatter.xreplace({axis: index})


def lower(function: KernelFunction, outputs: dict) -> Lowered:
    """Statements and outputs for ``function`` with the (stable) output expressions ``outputs``."""
    low = _Lowerer(function)
    exprs = {}
    scatters = {}
    for name, expr in outputs.items():
        if function.axis is not None:
            expr = expr.xreplace({function.axis: AXIS})
            if low.index is not None:
                expr, scatter = split_delta(expr, AXIS, low.index)
                if scatter is not None:
                    scatters[name] = low.reductions(low.gathers(scatter))
        elif expr.has(sp.Sum) or expr.has(sp.Indexed):
            raise LoweringError(f"elementwise output {name} has a sum or an indexed element: {expr}")
        exprs[name] = low.reductions(low.gathers(expr))
    exprs = {name: low.shifted_gathers(e) for name, e in exprs.items()}
    scatters = {name: low.shifted_gathers(e) for name, e in scatters.items()}
    # common subexpressions over reduction bodies, outputs and scatter values together
    reducible = [s for s in low.statements if s.op in ("max", "sum")]
    keys = [("stmt", s.symbol) for s in reducible] + [("out", k) for k in exprs] + [("scatter", k) for k in scatters]
    values = [s.expr for s in reducible] + list(exprs.values()) + list(scatters.values())
    temps, reduced = sp.cse(values, symbols=sp.numbered_symbols("x", real=True), optimizations=None, order="none")
    new_values = dict(zip(keys, reduced))
    statements = [s if s.op not in ("max", "sum") else Statement(s.symbol, s.op, new_values[("stmt", s.symbol)], s.shape)
                  for s in low.statements]
    for symbol, value in temps:
        shape = low.shape(value)
        low.shapes[symbol] = shape
        statements.append(Statement(symbol, "assign", value, shape))
    optional_names = set(function.optional)
    outs = []
    for name in exprs:
        value = new_values[("out", name)]
        scatter = new_values.get(("scatter", name))
        outs.append(Output(name, value, low.shape(value), name in optional_names, scatter))
    ordered = _order(statements, outs, low.shapes)
    return Lowered(function.name, function, tuple(ordered), tuple(outs), dict(low.shapes))


def _order(statements, outputs, shapes) -> list:
    """Topological order (stable: gathers, reductions and temporaries as created), marking the
    statements only optional outputs need."""
    by_symbol = {s.symbol: s for s in statements}
    deps = {s.symbol: {d for d in s.expr.free_symbols if d in by_symbol and d != s.symbol} for s in statements}

    def closure(exprs):
        seen, stack = set(), [d for e in exprs for d in e.free_symbols if d in by_symbol]
        while stack:
            sym = stack.pop()
            if sym not in seen:
                seen.add(sym)
                stack.extend(deps[sym])
        return seen

    required = closure([o.expr for o in outputs if not o.optional]
                       + [o.scatter for o in outputs if not o.optional and o.scatter is not None])
    needed = closure([o.expr for o in outputs] + [o.scatter for o in outputs if o.scatter is not None])
    done, ordered, pending = set(), [], [s for s in statements if s.symbol in needed]
    while pending:
        for position, s in enumerate(pending):
            if deps[s.symbol] <= done:
                break
        else:  # pragma: no cover - cse never makes cycles
            raise LoweringError("cyclic statements")
        pending.pop(position)
        done.add(s.symbol)
        ordered.append(Statement(s.symbol, s.op, s.expr, s.shape, s.symbol not in required))
    return ordered
