"""The Triton target: the generator's lowered functions printed as ``@triton.jit`` kernels.

A generated ``codegen/triton/NAME.py`` is called exactly like ``codegen/torch/NAME.py`` (the same case
functions, arguments and returns, the same dispatcher: :func:`symxent.codegen.targets.dispatcher`), on torch
tensors: CUDA tensors natively, CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``, read when
the module is imported). Each case function allocates the outputs and launches its kernel:

- a row loss or row map (kinds ``row``, ``map``): one program per row (a row loss's case function takes
  ``out=``, the buffer its gradient goes to: the logits themselves for ``inplace_backward``). The gathers at the target class; pass 1
  over the class axis in blocks of ``BLOCK``: the running maximum ``m`` of the score and each class-axis sum at
  the shift ``m``, moved along when ``m`` grows (rescaled by ``exp(m_old - m_new)``, or shifted by
  ``(m_old - m_new) * u`` for a sum linear in ``m``: the CUDA skeleton's merge); the row's loss and logsumexp;
  pass 2 writes the output row (the gradient, a map or its vector-Jacobian product) and adds the scatter at
  the target class. int64 row offsets, masks for any number of classes, loads in the tensor's dtype
  computed in ``COMPUTE`` (float32, or float64 for float64 tensors), one rounding per stored value (the output
  row in the input's dtype; the per-row loss and logsumexp in float32 / float64).
- an elementwise loss: one program per ``BLOCK`` elements, loss and derivative.

What is analysed is the CUDA target's analysis of a row case (:class:`symxent.codegen.cuda.target._RowCase`:
the gathers, the score, the sums and how they follow ``m``, the loop-invariant values of each pass); only
the printing differs. Functions Triton's interpreter cannot run (libdevice) are not printed: ``log1p`` is
``_log1p`` (Goldberg's ``log(u) * x / (u - 1)``, ``u = 1 + x``: accurate without libdevice), a
non-integer power ``_pow``, ``tanh`` ``_tanh``: helpers of :mod:`symxent.runtime.triton_lib`, which the generated
modules import; any other function is an error naming it.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from ..definitions.symbols import n as N
from . import rewrites
from .cuda.target import SUM_EXP, SUM_LINEAR, _RowCase, kernel_params
from .loss import Loss
from .lowering import Lowered
from .roles import Kind, Role
from .targets import REGENERATE, Target, dispatcher, source_comment

#: integer exponents printed as repeated multiplication
SMALL_POWERS = (2, 3, 4)
#: elements per program of an elementwise kernel
ELEMENT_BLOCK = 1024


class TritonCodegenError(ValueError):
    """The lowered function has a form the Triton kernels cannot compute (said how)."""


class TritonPrinter(PythonCodePrinter):
    """One element (a block of elements) as Triton: ``tl.exp``, ``tl.where``, ...; ``names``: symbol or
    IndexedBase -> the local that holds it in the kernel."""

    _default_settings = {**PythonCodePrinter._default_settings, "names": {}, "strict": True}

    def _print_Symbol(self, expr):
        return self._settings["names"].get(expr, expr.name)

    def _print_Indexed(self, expr):
        local = self._settings["names"].get(expr.base)
        if local is None:
            raise TritonCodegenError(f"{expr}: {expr.base} has no element local in this kernel")
        return local

    def _call(self, function, *args):
        return f"{function}({', '.join(self._print(a) for a in args)})"

    def _print_exp(self, expr):
        return self._call("tl.exp", expr.args[0])

    def _print_log(self, expr):
        return self._call("tl.log", expr.args[0])

    def _print_log1p(self, expr):
        return self._call("_log1p", expr.args[0])

    def _print_Abs(self, expr):
        return self._call("tl.abs", expr.args[0])

    def _print_sigmoid(self, expr):
        return f"1.0/(1.0 + {self._call('tl.exp', -expr.args[0])})"

    def _nested(self, function, expr):
        first, *rest = expr.args
        out = self._print(first)
        for arg in rest:
            out = f"{function}({out}, {self._print(arg)})"
        return out

    def _print_Max(self, expr):
        return self._nested("tl.maximum", expr)

    def _print_Min(self, expr):
        return self._nested("tl.minimum", expr)

    def _print_Piecewise(self, expr):
        if expr.args[-1].cond != True:  # noqa: E712 - SymPy's true
            raise TritonCodegenError(f"a Piecewise needs a final (value, True) branch: {expr}")
        out = self._print(expr.args[-1].expr)
        for value, cond in reversed(expr.args[:-1]):
            out = f"tl.where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return " & ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Or(self, expr):
        return " | ".join(f"({self._print(a)})" for a in expr.args)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_NaN(self, expr):
        return 'float("nan")'

    def _print_Infinity(self, expr):
        return 'float("inf")'

    def _print_NegativeInfinity(self, expr):
        return 'float("-inf")'

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.as_base_exp()
        if exponent.is_Integer and abs(int(exponent)) in SMALL_POWERS + (1,):
            factor = self.parenthesize(base, PRECEDENCE["Mul"])
            product = "*".join([factor] * abs(int(exponent)))
            return product if exponent > 0 else f"1.0/({product})"
        if exponent == sp.S.Half:
            return self._call("tl.sqrt", base)
        if exponent == -sp.S.Half:
            return f"1.0/{self._call('tl.sqrt', base)}"
        return self._call("_pow", base, exponent)

    def _print_tanh(self, expr):
        return self._call("_tanh", expr.args[0])

    def _print_Sum(self, expr):
        raise TritonCodegenError(f"{expr}: a class-axis sum must be lowered before printing")

    def _print_KroneckerDelta(self, expr):
        raise TritonCodegenError(f"{expr}: a Kronecker delta must be lowered before printing")


def _not_in_triton(self, expr):
    raise TritonCodegenError(f"{expr}: {type(expr).__name__} has no Triton spelling here (the interpreter runs no "
                             f"libdevice); write it with exp / log, or add a helper to the module template")


for _name in PythonCodePrinter._kf:  # every function SymPy would print through the math module, unless spelled above
    if getattr(TritonPrinter, f"_print_{_name}", None) is getattr(PythonCodePrinter, f"_print_{_name}", None):
        setattr(TritonPrinter, f"_print_{_name}", _not_in_triton)


def triton_printer(names: dict) -> TritonPrinter:
    return TritonPrinter({"names": dict(names), "strict": True})


# --- the pieces of a kernel body ---------------------------------------------------------------

def _needed(exprs, assigns: dict) -> list:
    """The assign statements ``exprs`` use, transitively, in the lowering's order."""
    needed, stack = set(), [s for e in exprs for s in sp.sympify(e).free_symbols if s in assigns]
    while stack:
        symbol = stack.pop()
        if symbol not in needed:
            needed.add(symbol)
            stack.extend(s for s in assigns[symbol].free_symbols if s in assigns)
    return [symbol for symbol in assigns if symbol in needed]


def _piece(exprs, names: dict, assigns: dict, suffix: str):
    """``(lines, printed)``: the locals ``exprs`` need (each assign statement once, named ``<symbol><suffix>`` so
    that the pieces of one kernel never share a local) and the printed expressions."""
    exprs = [sp.sympify(e) for e in exprs]
    statements = _needed(exprs, assigns)
    names = dict(names)
    lines = []
    for symbol in statements:
        value = triton_printer(names).doprint(assigns[symbol])
        names[symbol] = f"{symbol.name}{suffix}"
        lines.append(f"{names[symbol]} = {value}")
    printer = triton_printer(names)
    return lines, [printer.doprint(e) for e in exprs]


def _indent(lines, depth: int) -> list:
    return ["    " * depth + line for line in lines]


# --- row kernels ----------------------------------------------------------------------------------

class _TritonRow:
    """One lowered function of a row loss or row map: its kernel and its case function."""

    def __init__(self, loss: Loss, low: Lowered, index: int):
        self.loss, self.low, self.params = loss, low, kernel_params(loss)
        self.case = _RowCase(loss, low, index, self.params)  # the analysis, shared with the CUDA target
        case = self.case
        self.rows_args = [a for a in low.args if a.role is Role.ROWS]
        self.classes_arg = next((a for a in low.args if a.role is Role.CLASSES), None)
        self.index_arg = next((a for a in low.args if a.role is Role.INDEX), None)
        unsupported = [a.name for a in low.args if a.role in (Role.LOCAL_INDEX, Role.ROW)]
        if unsupported:
            raise TritonCodegenError(f"{low.name}: arguments {unsupported} (per-row values, local indices) have no "
                                     f"Triton template")
        self.elements = {case.x: "x_a"}
        if case.y is not None:
            self.elements[case.y] = "y_a"
        if case.w is not None:
            self.elements[case.w] = "w_a"

    def names(self, stage: str, hoisted=()) -> dict:
        """The locals a piece reads: ``n``, the gathers ``g<j>``, the parameters by their argument names, the
        pass's hoisted values, and the maximum (``m_shift`` in pass 1's sums, ``m`` after) and sums ``s<j>``."""
        case = self.case
        names = dict(self.elements)
        names[N] = "n"
        names.update({g.symbol: f"g{j}" for j, g in enumerate(case.gathers)})
        names.update({p.symbol: p.field for p in self.params})
        names.update({symbol: f"h{stage[0]}{k}" for k, (symbol, _) in enumerate(hoisted)})
        if case.m is not None and stage == "sums":
            names[case.m] = "m_shift"
        if stage in ("row", "dense"):
            if case.m is not None:
                names[case.m] = "m"
            names.update({s.symbol: f"s{j}" for j, s in enumerate(case.sums)})
        return names

    def tensor_args(self) -> list:
        """The input tensors the kernel takes, in its order: the rows, the class vector, the targets."""
        return [a.name for a in self.rows_args + [self.classes_arg, self.index_arg] if a is not None]

    def kernel_args(self) -> list:
        ptrs = [f"{name}_ptr" for name in self.tensor_args()]
        outs = ["result_ptr"] + (["loss_ptr"] if self.case.row_output else []) + (["lse_ptr"] if self.wants_lse else [])
        return ptrs + outs + ["n_cols"] + (["params_ptr"] if self.params else [])

    @property
    def takes_out(self) -> bool:
        """A row loss writes its gradient where ``out=`` says (e.g. into the logits themselves: ``inplace_backward``)."""
        return self.loss.kind is Kind.ROW

    @property
    def wants_lse(self) -> bool:
        return any(o.name == "lse" for o in self.low.outputs)

    def _loads(self, other: str) -> list:
        case = self.case
        lines = [f"x_a = tl.load({self.rows_args[0].name}_ptr + offset + cols, mask=mask, other={other}).to(COMPUTE)"]
        if case.y is not None:
            lines.append(f"y_a = tl.load({self.rows_args[1].name}_ptr + offset + cols, mask=mask, other=0.0)"
                         f".to(COMPUTE)")
        if case.w is not None:
            lines.append(f"w_a = tl.load({self.classes_arg.name}_ptr + cols, mask=mask, other=0.0).to(COMPUTE)")
        return lines

    def _gathers(self) -> list:
        case, lines = self.case, []
        if case.index_target:
            lines.append(f"c = tl.load({self.index_arg.name}_ptr + row)")
        for j, g in enumerate(case.gathers):
            base = g.expr.base
            if base == case.x:
                source = f"{self.rows_args[0].name}_ptr + offset + c"
            elif base == case.y:
                source = f"{self.rows_args[1].name}_ptr + offset + c"
            elif base == case.w:
                source = f"{self.classes_arg.name}_ptr + c"
            else:
                raise TritonCodegenError(f"{self.low.name}: cannot gather {g.expr}")
            lines.append(f"g{j} = tl.load({source}).to(COMPUTE)  # {g.symbol}")
        return lines

    def _hoisted(self, hoisted, stage: str) -> list:
        lines = []
        for k, (symbol, value) in enumerate(hoisted):
            body, (printed,) = _piece([value], self.names(stage), self.case.assigns, f"_{stage[0]}h{k}")
            lines += body + [f"h{stage[0]}{k} = {printed}  # {symbol}"]
        return lines

    def pass1(self) -> list:
        """The running maximum and the sums, block by block."""
        case = self.case
        if case.m is None and not case.sums:
            return []
        lines = ["m = tl.max(tl.full([BLOCK], float(\"-inf\"), COMPUTE), 0)"] if case.m is not None else []
        lines += [f"s{j} = tl.sum(tl.zeros([BLOCK], COMPUTE), 0)" for j in range(len(case.sums))]
        linear = [j for j, (kind, _) in enumerate(case.kinds) if kind == SUM_LINEAR]
        lines += [f"u{j} = tl.sum(tl.zeros([BLOCK], COMPUTE), 0)" for j in linear]
        loop = ["cols = start + tl.arange(0, BLOCK)", "mask = cols < n_cols"]
        loop += self._loads("0.0")
        if case.m is not None:
            body, (score,) = _piece([case.score_printed], self.names("score", case.hoisted1), case.assigns1, "_1")
            loop += body + [f"top = tl.maximum(m, tl.max(tl.where(mask, {score}, float(\"-inf\")), 0))"]
            for j, (kind, _) in enumerate(case.kinds):
                if kind == SUM_EXP:
                    loop.append(f"s{j} = tl.where(m == float(\"-inf\"), 0.0, s{j} * tl.exp(m - top))")
                elif kind == SUM_LINEAR:
                    loop.append(f"s{j} = s{j} + (_shift(m) - _shift(top)) * u{j}")
            loop += ["m = top", "m_shift = _shift(m)"]
        if case.sums:
            exprs = list(case.sums_printed) + list(case.u_printed)
            body, printed = _piece(exprs, self.names("sums", case.hoisted1), case.assigns1, "_2")
            loop += body
            slots = [f"s{j}" for j in range(len(case.sums))] + [f"u{j}" for j in linear]
            loop += [f"{slot} = {slot} + tl.sum(tl.where(mask, {p}, 0.0), 0)" for slot, p in zip(slots, printed)]
        return lines + ["for start in range(0, n_cols, BLOCK):"] + _indent(loop, 1)

    def kernel(self) -> str:
        case = self.case
        lines = ["row = tl.program_id(0).to(tl.int64)", "offset = row * n_cols",
                 "n = tl.full([], n_cols, COMPUTE)"] + _load_params(self.params)
        lines += self._gathers() + self._hoisted(case.hoisted1, "score") + self.pass1()
        if case.row_output:
            loss_expr = self.case.outputs[case.row_output][0]
            body, (printed,) = _piece([loss_expr], self.names("row"), case.assigns, "_3")
            lines += body + [f"tl.store(loss_ptr + row, {printed})"]
        if self.wants_lse:
            lse = case.lse_sum()
            if lse < 0:
                raise TritonCodegenError(f"{self.low.name}: no sum of exp(score - m) to take the logsumexp of")
            lines.append(f"tl.store(lse_ptr + row, m + tl.log(s{lse}))")
        dense_expr, scatter_expr = case.outputs[case.dense_output]
        out = self._hoisted(case.hoisted2, "dense")
        if scatter_expr is not None:
            body, (printed,) = _piece([scatter_expr], self.names("row"), case.assigns, "_4")
            out += body + [f"scatter = {printed}"]
        loop = ["cols = start + tl.arange(0, BLOCK)", "mask = cols < n_cols"] + self._loads("0.0")
        body, (printed,) = _piece([case.dense_printed], self.names("dense", case.hoisted2), case.assigns2, "_5")
        loop += body + [f"value = {printed}"]
        if scatter_expr is not None:
            loop.append("value = value + tl.where(cols == c, scatter, 0.0)")
        loop.append("tl.store(result_ptr + offset + cols, value, mask=mask)")
        out += ["for start in range(0, n_cols, BLOCK):"] + _indent(loop, 1)
        if case.row_output:
            lines += ["if WANT_OUT:"] + _indent(out, 1)
        else:
            lines += out
        signature = ", ".join(self.kernel_args() + ["WANT_OUT: tl.constexpr", "COMPUTE: tl.constexpr",
                                                    "BLOCK: tl.constexpr"])
        return "\n".join(["@triton.jit", f"def {self.low.name}_kernel({signature}):",
                          f'    """{_doc(self.low)}"""'] + _indent(lines, 1)) + "\n"

    def function(self) -> str:
        """The case function: the torch target's signature and returns; allocates, launches."""
        low, case = self.low, self.case
        switch = self.loss.switch_arg
        signature = [a.name for a in low.args] + ([switch] if switch else []) + (["out=None"] if self.takes_out else [])
        like = self.rows_args[0].name
        tensors = self.tensor_args()
        lines = [f"rows_count, n_cols = {like}.shape"]
        lines += [f"{name} = {name}.contiguous()" for name in tensors]
        want = switch if (case.row_output and switch) else "True"
        out_name = case.dense_output
        allocate = f"torch.empty_like({like})" if not self.takes_out else f"(out if out is not None else torch.empty_like({like}))"
        lines.append(f"{out_name} = {allocate} if {want} else None")
        if case.row_output:
            lines.append(f"{case.row_output} = torch.empty(rows_count, dtype=_accumulate({like}), device={like}.device)")
        if self.wants_lse:
            lines.append(f"lse = torch.empty(rows_count, dtype=_accumulate({like}), device={like}.device)")
        buffers = [f"{out_name} if {out_name} is not None else {like}"]
        buffers += [case.row_output] if case.row_output else []
        buffers += ["lse"] if self.wants_lse else []
        call = ", ".join(tensors + buffers + ["n_cols"] + (["params"] if self.params else []))
        lines += _params_tensor(self.params, like)
        lines += ["if rows_count and n_cols:",
                  f"    {low.name}_kernel[(rows_count,)]({call}, WANT_OUT=bool({want}), "
                  f"COMPUTE=_compute({like}), BLOCK=_row_block(n_cols))"]
        returns = ", ".join(o.name for o in low.outputs)
        lines.append(f"return {returns}")
        return _function(low.name, signature, lines, returns)


def _load_params(params) -> list:
    """The scalar arguments and loss parameters, read from a tensor in the compute dtype (a Python float
    argument would be float32 in Triton: float64 kernels would lose digits)."""
    return [f"{p.field} = tl.load(params_ptr + {k}).to(COMPUTE)" for k, p in enumerate(params)]


def _params_tensor(params, like: str) -> list:
    if not params:
        return []
    values = ", ".join(f"float(params[{p.field!r}])" if p.role == "params" else f"float({p.field})" for p in params)
    return [f"params = torch.tensor([{values}], dtype={like}.dtype, device={like}.device)"]


def _doc(low: Lowered) -> str:
    when = " and ".join(f"{k} == {v!r}" for k, v in low.function.when) or "always"
    return f"{low.name} ({when}); generated, see the module docstring."


def _function(name, signature, lines, returns) -> str:
    return "\n".join([f"def {name}({', '.join(signature)}):",
                      f'    """Returns ({returns}); generated, see the module docstring."""']
                     + _indent(lines, 1)) + "\n"


# --- elementwise kernels --------------------------------------------------------------------------

class _TritonElementwise:
    def __init__(self, loss: Loss, low: Lowered):
        self.loss, self.low, self.params = loss, low, kernel_params(loss)
        self.inputs = [a for a in low.args if a.role is Role.ELEMENTS]
        outputs = {o.name: o.expr for o in low.outputs}
        if set(outputs) != {"loss", "grad"}:
            raise TritonCodegenError(f"{low.name}: an elementwise kernel writes loss and grad, got {sorted(outputs)}")
        self.outputs = outputs

    def kernel(self) -> str:
        names = {a.symbol: f"v_{a.name}" for a in self.inputs}
        names.update({p.symbol: p.field for p in self.params})
        assigns = {s.symbol: s.expr for s in self.low.statements if s.op == "assign"}
        lines = ["offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)", "mask = offsets < count"]
        lines += _load_params(self.params)
        lines += [f"v_{a.name} = tl.load({a.name}_ptr + offsets, mask=mask, other=0.5).to(COMPUTE)"
                  for a in self.inputs]
        body, (loss,) = _piece([self.outputs["loss"]], names, assigns, "_l")
        lines += body + ["tl.store(loss_ptr + offsets, " + loss + ", mask=mask)"]
        body, (grad,) = _piece([self.outputs["grad"]], names, assigns, "_g")
        lines += ["if WANT_GRAD:"] + _indent(body + [f"tl.store(grad_ptr + offsets, {grad}, mask=mask)"], 1)
        args = [f"{a.name}_ptr" for a in self.inputs] + ["loss_ptr", "grad_ptr", "count"] + \
            (["params_ptr"] if self.params else []) + ["WANT_GRAD: tl.constexpr", "COMPUTE: tl.constexpr",
                                                       "BLOCK: tl.constexpr"]
        return "\n".join(["@triton.jit", f"def {self.low.name}_kernel({', '.join(args)}):",
                          f'    """{_doc(self.low)}"""'] + _indent(lines, 1)) + "\n"

    def function(self) -> str:
        switch = self.loss.switch_arg
        signature = [a.name for a in self.low.args] + [switch]
        first = self.inputs[0].name
        lines = [f"{a.name} = {a.name}.contiguous()" for a in self.inputs]
        lines += _params_tensor(self.params, first)
        lines += [f"count = {first}.numel()", f"loss = torch.empty_like({first}, dtype=_accumulate({first}))",
                  f"grad = torch.empty_like({first}) if {switch} else None",
                  "if count:",
                  f"    {self.low.name}_kernel[(triton.cdiv(count, {ELEMENT_BLOCK}),)]("
                  + ", ".join([a.name for a in self.inputs] + [f"loss, grad if grad is not None else loss, count"]
                              + (["params"] if self.params else []))
                  + f", WANT_GRAD=bool({switch}), COMPUTE=_compute({first}), BLOCK={ELEMENT_BLOCK})",
                  "return loss, grad"]
        return _function(self.low.name, signature, lines, "loss, grad")


# --- the target -------------------------------------------------------------------------------------

MODULE_HEAD = '''"""{title}

Generated by symxent (symxent.codegen, target triton); do not edit: regenerate with
    {command}

{source}

Called like codegen/torch/{name}.py, on torch tensors (CUDA; CPU under TRITON_INTERPRET=1).
"""
import torch
import triton
import triton.language as tl

from symxent.runtime.triton_lib import _accumulate, _compute, _log1p, _pow, _row_block, _shift, _tanh  # noqa: F401
'''


class TritonTarget(Target):
    """``@triton.jit`` kernels (one program per row, or per block of elements) called like the torch target."""

    name = "triton"
    optims = rewrites.OPTIMS_C  # the C / CUDA target's rules: the same stable expressions
    kinds = frozenset({Kind.ROW, Kind.MAP, Kind.ELEMENTWISE})

    def render(self, loss: Loss, lowered: list) -> dict:
        if loss.kind not in self.kinds:
            raise TritonCodegenError(f"{loss.name}: no Triton template for kind {loss.kind!r}")
        pieces = []
        for index, low in enumerate(lowered):
            case = _TritonElementwise(loss, low) if loss.kind is Kind.ELEMENTWISE else _TritonRow(loss, low, index)
            pieces += [case.kernel(), case.function()]
        title = f"{loss.name} for triton (generated)"
        head = MODULE_HEAD.format(title=title, command=REGENERATE, source=source_comment(loss), name=loss.name)
        keywords = ("out",) if loss.kind is Kind.ROW else ()
        text = head + "\n\n" + "\n\n".join(pieces) + "\n\n" + dispatcher(loss, lowered, keywords)
        return {f"{loss.name}.py": text.rstrip() + "\n"}
