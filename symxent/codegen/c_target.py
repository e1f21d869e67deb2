"""The C target: one C file per loss (float and double functions per case) and its Python binding.

A row kernel is one sweep over the rows; per row (template ``c_row_kernel.tmpl.c``):

1. the row's pointers, its target class ``tc`` and gathered values (``z_c = z[tc]``);
2. passes over the class axis (``c_class_loop.tmpl.c``, ``omp simd`` with reductions): every
   reduction whose inputs are ready goes into the same pass, so the max comes first, then the
   sums of the shifted exponentials and of any other class-axis terms;
3. row values (printed from the derived loss), the loss;
4. the gradient pass (only when ``grad`` is not NULL), then the target-class correction
   ``grad[tc] += ...``.

A ``row`` argument is read per row (``lse = lse_rows[r]``). A ``local_index`` target ``tc`` may be
-1: its gathers and its ``grad[tc]`` correction happen only where ``0 <= tc < n``.

Element temporaries (``exp(z[a] - m)``) are recomputed in each pass that needs them rather than
stored. Statements are ``sympy.codegen.ast`` nodes printed by :class:`CElementPrinter`.
"""
from __future__ import annotations

import re

import sympy as sp
from sympy.codegen.ast import Declaration, Variable, float32, float64, value_const

from ..definitions.symbols import n as N
from . import rewrites
from .loss import Loss
from .lowering import AXIS, Lowered
from .printers import c_printer
from .roles import Kind, Role
from .targets import REGENERATE, Target, dispatcher, source_comment, template

PRECISIONS = (("float", "f32"), ("double", "f64"))
#: names the C kernels use themselves (loop indices, sizes, the target class): no argument may take one
RESERVED = frozenset({"a", "e", "r", "n", "rows", "count", "tc"})
_AST_TYPE = {"float": float32, "double": float64}
ELEMENT = sp.Symbol("e", integer=True)


def _indent(lines, depth):
    return "\n".join(("    " * depth + line) if line else "" for line in lines)


class _CFunction:
    """Prints one lowered function for one precision."""

    def __init__(self, loss: Loss, low: Lowered, ctype: str, suffix: str):
        self.loss, self.low, self.ctype, self.suffix = loss, low, ctype, suffix
        self.type = _AST_TYPE[ctype]
        self.names = {N: "n"}
        for arg in low.args:
            if arg.name in RESERVED or re.fullmatch(r"[xsm]\d+", arg.name):
                raise ValueError(f"{loss.name}: the argument name {arg.name!r} is used by the generated C code "
                                 f"itself (reserved: {', '.join(sorted(RESERVED))}, x0, s1, m2, ...)")
            if arg.role in (Role.ROWS, Role.CLASSES, Role.SCALAR, Role.ROW):
                self.names[arg.symbol] = arg.name
            elif arg.role.is_index:
                self.names[arg.symbol] = "tc"
            elif arg.role is Role.ELEMENTS:
                self.names[arg.symbol] = f"{arg.name}[e]"
        for p in loss.params:
            self.names[p] = f"p_{p.name}"
        shapes = {sym: ("dense" if shape in ("dense", "classes") else shape) for sym, shape in low.shapes.items()}
        bases = [a.symbol for a in low.args if a.role.binds_base]
        self.p = c_printer(ctype, self.names, shapes, bases)
        self.by_symbol = {s.symbol: s for s in low.statements}

    # --- small printing helpers ------------------------------------------------------------

    def expr(self, e) -> str:
        return self.p.doprint(e)

    def declare(self, symbol, value, const=True, accumulator=False) -> str:
        """``T name = value;``; an ``accumulator`` (a class-axis sum) is a double in every precision:
        2^17 float terms summed in float lose up to ~1e-5 relative, more than torch's cascade sum."""
        if isinstance(value, sp.logic.boolalg.Boolean):  # a condition, e.g. whether tc is a class of the row
            return f"const int {self.expr(symbol)} = {self.expr(value)};"
        attrs = {value_const} if const else set()
        kind = float64 if accumulator else self.type
        return self.p.doprint(Declaration(Variable(symbol, type=kind, value=value, attrs=attrs))) + ";"

    def signature(self) -> str:
        T = self.ctype
        parts = []
        for arg in self.low.args:
            if arg.role in (Role.ROWS, Role.ROW):
                parts.append(f"const {T} *restrict {arg.name}_rows")
            elif arg.role.is_index:
                parts.append(f"const int64_t *restrict {arg.name}")
            elif arg.role in (Role.CLASSES, Role.ELEMENTS):
                parts.append(f"const {T} *restrict {arg.name}")
        for arg in self.low.args:
            if arg.role is Role.SCALAR:
                parts.append(f"double {arg.name}_value")
            elif arg.role is Role.PARAMS:
                parts += [f"double p_{p.name}_value" for p in self.loss.params]
        parts += [f"{T} *restrict {o.name}" for o in self.low.outputs]
        return "".join(", " + part for part in parts)

    def prologue(self) -> list:
        lines = []
        for arg in self.low.args:
            if arg.role is Role.SCALAR:
                lines.append(f"const {self.ctype} {arg.name} = ({self.ctype}){arg.name}_value;")
            elif arg.role is Role.PARAMS:
                lines += [f"const {self.ctype} p_{p.name} = ({self.ctype})p_{p.name}_value;" for p in self.loss.params]
        return lines

    # --- dependencies ------------------------------------------------------------------------

    def element_temps(self, exprs) -> list:
        """The element-level statements (``dense``/``classes`` assigns) ``exprs`` need, in order."""
        needed, stack = set(), [s for e in exprs for s in e.free_symbols]
        while stack:
            sym = stack.pop()
            s = self.by_symbol.get(sym)
            if s is not None and s.op == "assign" and s.shape in ("dense", "classes") and sym not in needed:
                needed.add(sym)
                stack.extend(s.expr.free_symbols)
        return [s for s in self.low.statements if s.symbol in needed]

    def outer_deps(self, exprs) -> set:
        """The statements computed outside the loop (rows, reductions, gathers) ``exprs`` need."""
        temps = self.element_temps(exprs)
        symbols = set().union(*(e.free_symbols for e in exprs), *(s.expr.free_symbols for s in temps)) if exprs else set()
        return {s for s in symbols if s in self.by_symbol and self.by_symbol[s] not in temps}

    # --- loops -----------------------------------------------------------------------------------

    def class_loop(self, body_exprs, body_lines, clauses="", index=AXIS, size="n") -> list:
        temps = [self.declare(s.symbol, s.expr) for s in self.element_temps(body_exprs)]
        text = template("c_class_loop.tmpl.c").substitute(
            clauses=clauses, index=self.expr(index), size=size, body=_indent(temps + body_lines, 1))
        return text.rstrip("\n").split("\n")

    def reduction_pass(self, reductions) -> list:
        lines, clauses, body = [], "", []
        for s in reductions:
            name = self.expr(s.symbol)
            if s.op == "max":
                lines.append(self.declare(s.symbol, -sp.oo, const=False))
                clauses += f" reduction(max:{name})"
                larger = sp.Piecewise((s.expr, s.expr > s.symbol), (s.symbol, True))
                body.append(f"{name} = {self.expr(larger)};")
            else:
                lines.append(self.declare(s.symbol, sp.S.Zero, const=False, accumulator=True))
                clauses += f" reduction(+:{name})"
                body.append(f"{name} += {self.expr(s.expr)};")
        return lines + self.class_loop([s.expr for s in reductions], body, clauses)

    # --- row kernels -------------------------------------------------------------------------

    def schedule(self, available: set) -> list:
        """Row statements and reduction passes in dependency order (each pass as full as possible)."""
        statements = [s for s in self.low.statements if s.symbol not in available]
        rows = [s for s in statements if s.op == "assign" and s.shape == "row"]
        reductions = [s for s in statements if s.op in ("max", "sum")]
        lines = []
        while rows or reductions:
            progress = True
            while progress:
                progress = False
                for s in list(rows):
                    if self.outer_deps([s.expr]) <= available:
                        lines.append(self.declare(s.symbol, s.expr))
                        available.add(s.symbol)
                        rows.remove(s)
                        progress = True
            ready = [s for s in reductions if self.outer_deps([s.expr]) <= available]
            if not ready:
                if rows or reductions:
                    raise ValueError(f"cannot schedule {[str(s.symbol) for s in rows + reductions]}")
                break
            lines += self.reduction_pass(ready)
            available |= {s.symbol for s in ready}
            reductions = [s for s in reductions if s not in ready]
        return lines

    def hoisted(self) -> tuple:
        """Statements that do not depend on the row (scalar sums over class weights, constants)."""
        lines, done = [], set()
        for s in self.low.statements:
            if s.shape != "scalar":
                continue
            if s.op == "sum":
                lines.append(self.declare(s.symbol, sp.S.Zero, const=False, accumulator=True))
                lines += self.class_loop([s.expr], [f"{self.expr(s.symbol)} += {self.expr(s.expr)};"],
                                         f" reduction(+:{self.expr(s.symbol)})")
            elif s.op == "assign":
                lines.append(self.declare(s.symbol, s.expr))
            done.add(s.symbol)
        return lines, done

    def row_kernel(self) -> str:
        hoisted, available = self.hoisted()
        row = []
        for arg in self.low.args:
            if arg.role is Role.ROWS:
                row.append(f"const {self.ctype} *restrict {arg.name} = {arg.name}_rows + r * n;")
            elif arg.role is Role.ROW:
                row.append(f"const {self.ctype} {arg.name} = {arg.name}_rows[r];")
            elif arg.role.is_index:
                row.append(f"const int64_t tc = {arg.name}[r];")
        in_row = self.low.in_row
        for s in self.low.statements:
            if s.op == "gather":  # a local index reads nothing where it is no class of the row
                value = s.expr if in_row is None else sp.Piecewise((s.expr, in_row), (0, True))
                row.append(self.declare(s.symbol, value))
                available.add(s.symbol)
        row += self.schedule(available)
        for o in self.low.outputs:
            if o.name in self.low.function.per_row:
                guard = f"if ({o.name}) " if o.optional else ""
                row.append(f"{guard}{o.name}[r] = {self.expr(o.expr)};")
        for o in self.low.outputs:
            if o.name in self.low.function.per_row:
                continue
            block = [f"{self.ctype} *restrict {o.name}_r = {o.name} + r * n;"]
            block += self.class_loop([o.expr], [f"{o.name}_r[a] = {self.expr(o.expr)};"])
            if o.scatter is not None:
                guard = "" if in_row is None else f"if ({self.expr(in_row)}) "
                block.append(f"{guard}{o.name}_r[tc] += {self.expr(o.scatter)};")
            row += [f"if ({o.name}) {{"] + ["    " + b for b in block] + ["}"] if o.optional else block
        return template("c_row_kernel.tmpl.c").substitute(
            doc=f"{self.low.name} ({self.ctype}): see the file header", symbol=self.symbol(),
            params=self.signature(), prologue=_indent(self.prologue() + hoisted, 1), row=_indent(row, 2))

    # --- elementwise kernels -----------------------------------------------------------------

    def elementwise_kernel(self) -> str:
        hoisted = [self.declare(s.symbol, s.expr) for s in self.low.statements if s.shape == "scalar"]

        def loop(outputs):
            body = [f"{o.name}[e] = {self.expr(o.expr)};" for o in outputs]
            return self.class_loop([o.expr for o in outputs], body, index=ELEMENT, size="count")

        required = [o for o in self.low.outputs if not o.optional]
        optional = [o for o in self.low.outputs if o.optional]
        if optional:
            flag = " && ".join(o.name for o in optional)
            loops = ([f"if ({flag}) {{"] + ["    " + x for x in loop(required + optional)] + ["} else {"]
                     + ["    " + x for x in loop(required)] + ["}"])
        else:
            loops = loop(required)
        return template("c_elementwise_kernel.tmpl.c").substitute(
            doc=f"{self.low.name} ({self.ctype}): see the file header", symbol=self.symbol(),
            params=self.signature(), prologue=_indent(self.prologue() + hoisted, 1), loops=_indent(loops, 1))

    def symbol(self) -> str:
        return f"symxent{self.low.name}_{self.suffix}"

    def render(self) -> str:
        return self.row_kernel() if self.low.function.axis is not None else self.elementwise_kernel()


class CTarget(Target):
    """C99 source with float and double functions, and a Python binding (``CKernel``)."""

    name = "c"
    optims = rewrites.OPTIMS_C

    def render(self, loss: Loss, lowered: list) -> dict:
        functions = "".join(_CFunction(loss, low, ctype, suffix).render()
                            for low in lowered for ctype, suffix in PRECISIONS)
        source = "\n".join(" * " + line for line in source_comment(loss).splitlines())
        c_text = template("c_module.tmpl.c").substitute(
            title=f"{loss.name} for c (generated)", command=REGENERATE, source=source, functions=functions)
        return {f"{loss.name}.c": c_text.rstrip() + "\n", f"{loss.name}.py": self.binding(loss, lowered)}

    def binding(self, loss: Loss, lowered: list) -> str:
        kernels = []
        switch = (f"wants_grad={loss.wants_grad!r}" if loss.kind in (Kind.ROW, Kind.ELEMENTWISE, Kind.MAP)
                  else f"switch={loss.switch_arg!r}")
        for low in lowered:
            layout = "elements" if low.function.axis is None else None
            outputs = tuple((o.name, layout or ("row" if o.name in low.function.per_row else "dense"), o.optional)
                            for o in low.outputs)
            args = tuple((a.name, str(a.role)) for a in low.args)  # the runtime contract: plain strings
            kind = "elements" if low.function.axis is None else "rows"
            kernels.append(f"{low.name} = CKernel(_SOURCE, {'symxent' + low.name!r}, {kind!r},\n"
                           f"    args={args!r},\n    outputs={outputs!r},\n"
                           f"    params={tuple(p.name for p in loss.params)!r}, {switch})")
        return template("c_binding.tmpl.py").substitute(
            title=f"{loss.name} for c (generated): the Python binding of {loss.name}.c", command=REGENERATE,
            source=source_comment(loss), name=loss.name, kernels="\n".join(kernels),
            entry=dispatcher(loss, lowered)).rstrip() + "\n"
