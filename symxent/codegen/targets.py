"""Targets: a printer, the rewrite rules it uses, and templates. ``render`` turns lowered
functions into source files.

- :class:`NumpyTarget` / :class:`TorchTarget`: one Python module per loss; whole-array statements
  (a reduction is ``numpy.sum(..., axis=-1, keepdims=True)``), in-place where an array is fresh.
- :class:`CTarget` (``c_target.py``): one C file per loss, a fused per-row loop (passes over the
  class axis for the reductions, then the gradient), plus a small Python binding.
"""
from __future__ import annotations

from pathlib import Path
from string import Template

import sympy as sp

from . import rewrites
from .loss import Loss
from .roles import Kind, Role
from .lowering import Lowered, Output, Statement
from .printers import NumpyArrayPrinter

TEMPLATES = Path(__file__).parent / "templates"
REGENERATE = "symxent codegen --all   (or: python -c 'import symxent.codegen as g; g.write_all(\"codegen\")')"


def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def code_names(lowered_args, params=()) -> dict:
    """What each bound symbol is called in generated code."""
    names = {}
    for arg in lowered_args:
        if arg.symbol is not None:
            names[arg.symbol] = arg.name
    for p in params:
        names[p] = f"p_{p.name}"
    return names


def source_comment(loss: Loss, width: int = 100) -> str:
    """The expressions a file was generated from (one line per case, or per output of a ``row_sums``
    kernel), and the reductions its arguments supply."""
    lines = [f"{loss.name}: {loss.doc}" if loss.doc else loss.name]
    for case in loss.cases:
        when = " and ".join(f"{k} == {v!r}" for k, v in case.when) or "always"
        lines.append(f"  case {when}:")
        if loss.kind is Kind.ROW_SUMS:
            lines += [f"    {name} = {sp.sstr(expr)}" for name, expr in case.expr]
        elif loss.kind is Kind.ROW_GRADIENT:
            lines.append(f"    grad = d/d{loss.wrt}[k] of {sp.sstr(case.expr)}")
        else:
            lines.append(f"    {loss.kind.output_name} = {sp.sstr(case.expr)}")
    for arg in loss.args:
        if arg.supplies is not None:
            lines.append(f"  argument {arg.name} supplies {sp.sstr(arg.supplies)}")
    return "\n".join(lines)


class Target:
    """A code target: its name, the rewrite rules ``optims`` it prints from, the kinds of kernel it can
    express, and ``render``."""

    name = ""
    optims: tuple = ()
    kinds = frozenset(Kind)

    def expresses(self, loss: Loss) -> bool:
        """Whether this target has a template for ``loss``'s kind."""
        return loss.kind in self.kinds

    def render(self, loss: Loss, functions: list) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


class ArrayTarget(Target):
    """Python modules over whole arrays (NumPy, Torch): shared emission, per-library spellings."""

    printer_class = NumpyArrayPrinter
    ops: dict = {}

    def printer(self, low: Lowered, names: dict):
        bases = {a.symbol for a in low.args if a.role is Role.ROWS}
        return self.printer_class({"names": names, "shapes": low.shapes, "array_bases": bases,
                                   "fully_qualified_modules": True, "strict": True})

    # --- statements ------------------------------------------------------------------

    def statement(self, s: Statement, p, low: Lowered, last_use: dict) -> list:
        name = p._print(s.symbol)
        if s.op == "gather":
            base = s.expr.base
            role = next(a.role for a in low.args if a.symbol == base)
            fmt = self.ops["gather_rows"] if role is Role.ROWS else self.ops["gather_classes"]
            if low.in_row is None:
                return [f"{name} = " + fmt.format(base=p._name(base), index=low.index_arg.name)]
            # a local index: gather at class 0 where it is -1 (discarded there), nothing from an empty row
            gathered = fmt.format(base=p._name(base), index=safe_index(low))
            return [f"{name} = {gathered} if n else " + self.ops["zeros_rows"].format(base=p._name(base))]
        if s.op in ("max", "sum"):
            return [f"{name} = " + self.ops[s.op].format(p._print(s.expr))]
        value = s.expr
        if (isinstance(value, sp.Function) and len(value.args) == 1 and value.func.__name__ in self.ops["inplace"]
                and s.shape == "dense" and not value.args[0].is_Symbol and p._is_dense(value.args[0])):
            inner = p._print(value.args[0])
            return [f"{name} = {inner}", self.ops["inplace_call"].format(f=value.func.__name__, x=name)]
        return [f"{name} = {p._print(value)}"]

    def output(self, o: Output, p, low: Lowered, last_use: dict, position: int, like: str) -> list:
        if low.function.axis is not None and o.name in low.function.per_row:
            lines = [f"{o.name} = _rows({p._print(o.expr)}, {like})"]
        else:
            temps = {s.symbol for s in low.statements if s.op == "assign" and s.shape == "dense"}
            lines = [self._dense_output(o, p, last_use, position, like, temps)]
        if o.scatter is not None and low.in_row is None:
            lines.append(f"{o.name}[rows, {low.index_arg.name}] += _rows({p._print(o.scatter)}, {like})")
        elif o.scatter is not None:  # a local index: add only where it is a class of this row
            value = p._print(sp.Piecewise((o.scatter, low.in_row), (0, True)))
            lines += ["if n:", f"    {o.name}[rows, {safe_index(low)}] += _rows({value}, {like})"]
        return lines

    def _dense_output(self, o: Output, p, last_use: dict, position: int, like: str, temps: set) -> str:
        """``grad = <expr>``, reusing a dense temporary that is not used afterwards."""
        expr = o.expr
        if isinstance(expr, sp.Mul):
            reusable = [f for f in expr.args if f in temps and last_use.get(f) == position]
            if reusable:
                temp = reusable[0]
                rest = sp.Mul(*[f for f in expr.args if f is not temp])
                if not p._is_dense(rest):
                    return f"{o.name} = {p._print(temp)}; {o.name} *= {p._print(rest)}"
        if expr in temps and last_use.get(expr) == position:
            return f"{o.name} = {p._print(expr)}"
        if expr.is_Symbol or isinstance(expr, sp.Indexed):
            return f"{o.name} = {p._print(expr)}{self.ops['clone']}"
        return f"{o.name} = _dense({p._print(expr)}, {like})"

    # --- functions ---------------------------------------------------------------------

    def function(self, loss: Loss, low: Lowered) -> str:
        names = code_names(low.args, loss.params)
        for arg in low.args:  # per-row arrays (R,) enter the whole-array expressions as (R, 1)
            if arg.role.per_row:
                names[arg.symbol] = f"{arg.name}[:, None]"
        p = self.printer(low, names)
        arg_names = [a.name for a in low.args]
        switch = loss.switch_arg
        signature = ", ".join(arg_names + ([switch] if switch else []))
        like = next(a.name for a in low.args if a.role.is_data)
        body = []
        if low.function.axis is not None:
            body.append(f"rows_count, n = {like}.shape")
            if any(o.scatter is not None for o in low.outputs):
                body.append(f"rows = {self.ops['arange']}(rows_count{self.ops['device_kw'].format(like=like)})")
            if low.in_row is not None:
                body.append(f"{safe_index(low)} = " + self.ops["clamp_index"].format(index=low.index_arg.name))
        for param in loss.params:
            body.append(f"{names[param]} = float(params[{param.name!r}])")
        # position of each symbol's last use: statements count 0..len-1, outputs follow
        uses = [s.expr for s in low.statements] + [o.expr for o in low.outputs]
        last_use = {}
        for position, expr in enumerate(uses):
            for symbol in expr.free_symbols:
                last_use[symbol] = position
        for position, o in enumerate(low.outputs, len(low.statements)):
            if o.scatter is not None:
                for symbol in o.scatter.free_symbols:
                    last_use[symbol] = max(last_use.get(symbol, -1), position)
        required = [s for s in low.statements if not s.optional]
        optional = [s for s in low.statements if s.optional]
        inner = []
        for s in required:
            inner += self.statement(s, p, low, last_use)
        for position, o in enumerate(low.outputs, len(low.statements)):
            if not o.optional:
                inner += self.output(o, p, low, last_use, position, like)
        optional_outputs = [(position, o) for position, o in enumerate(low.outputs, len(low.statements)) if o.optional]
        if optional_outputs:
            for o in (o for _, o in optional_outputs):
                inner.append(f"{o.name} = None")
            inner.append(f"if {switch}:")
            block = []
            for s in optional:
                block += self.statement(s, p, low, last_use)
            for position, o in optional_outputs:
                block += self.output(o, p, low, last_use, position, like)
            inner += ["    " + line for line in block]
        body += self.ops["guard"](inner)
        returns = ", ".join(o.name for o in low.outputs)
        body.append(f"return {returns}")
        doc = f"Returns ({returns}); generated, see the module docstring."
        return template("array_function.tmpl.py").substitute(
            name=low.name, signature=signature, doc=doc, body="\n".join("    " + line for line in body))

    def render(self, loss: Loss, lowered: list) -> dict:
        functions = "".join(self.function(loss, low) for low in lowered) + dispatcher(loss, lowered)
        text = template("array_module.tmpl.py").substitute(
            title=f"{loss.name} for {self.name} (generated)", target=self.name, command=REGENERATE,
            source=source_comment(loss), imports=self.ops["imports"], broadcast=self.ops["broadcast"],
            as_array=self.ops["as_array"], dtype_kw=self.ops["dtype_kw"], copy=self.ops["copy"],
            functions=functions)
        return {f"{loss.name}.py": text.rstrip() + "\n"}


def safe_index(low: Lowered) -> str:
    """The name of a local index with -1 replaced by 0 (where it gathers a value that is discarded)."""
    return f"safe_{low.index_arg.name}"


def call_doc(loss: Loss) -> str:
    if loss.kind is Kind.MAP:
        return "Returns the map; .backward(out, grad_output) returns grad_input."
    if loss.kind is Kind.ROW_SUMS:
        names = [name for name, _ in loss.cases[0].expr]
        optional = f"; {', '.join(loss.optional)} None unless {loss.switch}" if loss.optional else ""
        return f"Returns ({', '.join(names)}), one value per row each{optional}."
    if loss.kind is Kind.ROW_GRADIENT:
        return "Returns grad (R, C), the derivative of the row objective."
    if loss.params:
        return f"params: a dict with {', '.join(p.name for p in loss.params)}. Returns (loss, grad or None)."
    if loss.returns_lse:
        return "Returns (loss, grad or None, lse), the loss per row, d loss / d input and each row's logsumexp."
    return "Returns (loss, grad or None), the loss per row (or element) and d loss / d input."


def dispatcher(loss: Loss, lowered: list, keywords: tuple = ()) -> str:
    """The public function: calls the case function whose ``when`` matches (shared by all targets); ``keywords``:
    extra keyword arguments (``"out"``) it takes (default None) and passes on."""
    arg_names = [a.name for a in loss.args] + ([loss.switch_arg] if loss.switch_arg else [])
    call = ", ".join(arg_names + [f"{k}={k}" for k in keywords])
    signature = ", ".join(arg_names + [f"{k}=None" for k in keywords])
    is_vjp = lambda low: loss.kind is Kind.MAP and low.name.endswith("_backward")  # a map's backward
    forward = [low for low in lowered if not is_vjp(low)]
    lines = []
    for low in forward:
        when = low.function.when
        if when:
            conds = [(f"{k}" if v is True else f"not {k}" if v is False else f"{k} == {v!r}") for k, v in when]
            lines.append(f"if {' and '.join(conds)}:")
            lines.append(f"    return {low.name}({call})")
        else:
            lines.append(f"return {low.name}({call})")
    if forward[-1].function.when:
        lines.append(f"raise ValueError('{loss.name}: no generated case for these arguments')")
    text = template("array_function.tmpl.py").substitute(
        name=loss.name, signature=signature, doc=f"{loss.name}: {loss.doc}. {call_doc(loss)}",
        body="\n".join("    " + line for line in lines))
    backward = [low for low in lowered if is_vjp(low)]
    if backward:
        text += f"\n\n{loss.name}.backward = {backward[0].name}\n"
    return text


def _numpy_guard(lines):
    return ['with numpy.errstate(all="ignore"):'] + ["    " + line for line in lines]


class NumpyTarget(ArrayTarget):
    name = "numpy"
    printer_class = NumpyArrayPrinter
    optims = rewrites.OPTIMS_NUMPY
    ops = dict(
        imports="import numpy",
        max="numpy.max({}, axis=-1, keepdims=True)",
        sum="numpy.sum({}, axis=-1, keepdims=True)",
        gather_rows="numpy.take_along_axis({base}, {index}[:, None], axis=-1)",
        gather_classes="{base}[{index}][:, None]",
        zeros_rows="numpy.zeros((rows_count, 1), {base}.dtype)",
        clamp_index="numpy.maximum({index}, 0)",
        inplace=("exp", "log", "log1p"),
        inplace_call="numpy.{f}({x}, out={x})",
        arange="numpy.arange",
        device_kw="",
        broadcast="numpy.broadcast_to",
        as_array="numpy.asarray",
        dtype_kw=", dtype=like.dtype",
        copy=".copy()",
        clone=".copy()",
        guard=_numpy_guard,
    )


class TorchTarget(ArrayTarget):
    name = "torch"

    @property
    def printer_class(self):
        from .printers_torch import TorchArrayPrinter  # imports torch: only when printing torch code
        return TorchArrayPrinter

    optims = rewrites.OPTIMS_TORCH
    ops = dict(
        imports="import math\n\nimport torch",
        max="torch.amax({}, dim=-1, keepdim=True)",
        sum="torch.sum({}, dim=-1, keepdim=True)",
        gather_rows="torch.gather({base}, -1, {index}[:, None])",
        gather_classes="{base}[{index}][:, None]",
        zeros_rows="{base}.new_zeros((rows_count, 1))",
        clamp_index="{index}.clamp(min=0)",
        inplace=("exp", "log", "log1p"),
        inplace_call="{x}.{f}_()",
        arange="torch.arange",
        device_kw=", device={like}.device",
        broadcast="torch.broadcast_to",
        as_array="torch.as_tensor",
        dtype_kw=", dtype=like.dtype, device=like.device",
        copy=".contiguous()",
        clone=".clone()",
        guard=lambda lines: list(lines),
    )
