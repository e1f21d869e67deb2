"""The CUDA target: the generator's lowered functions, printed by :class:`CudaPrinter` into
``Case`` structs of a generated ``NAME.cu`` (``templates/*.tmpl.cu``, ``string.Template.substitute``),
which includes the skeleton that runs them: the runtime's headers ``symxent/cuda/rows.cuh`` and
``elementwise.cuh`` (``symxent/runtime/include``; loads, loops, reductions, launch, written once). A
generated file is its printed math, a ``Module`` struct and one instantiation line; its contract
(``NAME.py``, :meth:`CudaTarget.contract`) tells the runtime how to call it.

A target is a printer, the rules it uses, templates and headers (STYLE 6):

- rules :data:`OPTIMS_CUDA`: the C target's (``rewrites.OPTIMS_C``), so the kernels print the same
  expressions as the C target: the logsumexp shifted by the row maximum ``m``, class-axis sums
  linear in a logit shifted too (``sum(w*(z - m))``), stable softplus / log-sigmoid, ``log1p``.
- templates: ``rows.tmpl.cu`` for row losses and row maps (one row per thread-block cluster; the
  printed pieces of each case are a ``Case`` struct, ``rows_case.tmpl.cu``) and
  ``elementwise.tmpl.cu`` for elementwise losses (``elementwise_case.tmpl.cu``); the C-linkage
  host API and the pybind11 binding are the runtime's headers (``symxent/cuda/api.h``,
  ``binding.h``), named in the contract (``cuda_binding.tmpl.py``) for the runtime.

What is printed for a row case (everything else is template; ``rows.cuh`` runs three passes: the row
maximum, the sums at that maximum, the output):

- ``gather``: values at the target class (``z_c = z[c]``, ``w_c = w[c]``), read by the template;
- ``score``: the element whose row maximum is the shift ``m`` (the logit, or e.g. its soft-capped value);
- ``sums``: each class-axis sum's term at the row's ``m`` (``s[j] += e``) and the element's value ``e`` that
  the output reuses: an exponential of the element that a sum and the output both contain, computed once
  (``e = exp2(log2e*(z_a - m))``), kept in shared memory by the skeleton (``kCache``);
- ``loss``: the row loss from ``m``, ``n``, the gathers, the sums and the parameters;
- ``element``: ``e`` again, for a row streamed from global memory (no cache);
- ``dense``: the output element (gradient or map) from the element's values, ``e`` and the row values,
  times the call's scale (``mean``'s 1/W and the factor, folded into the row factors);
- ``scatter``: what the output gains at the target class (``-w_c`` of ``softmax - onehot``);
- ``score_terms`` / ``sums_terms`` / ``dense_terms``: each pass's loop-invariant pieces, once per row.

Each pass's expressions are the lowering's with its statements inlined, every ``exp`` rewritten by
:data:`ELEMENT_RULES_CUDA` (``exp_as_exp2``: MUFU.EX2 computes 2^y), then hoisted (:func:`hoist_invariants`);
the other printed functions use the lowering's statements. The analysis of a row case (:class:`_RowCase`:
gathers, maximum, sums and how each follows a running maximum, :func:`sum_kind`) is shared with the Triton
target, which keeps an online maximum; the CUDA printing is :class:`_CudaRowCase`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from string import Template

import sympy as sp
from sympy.codegen.cfunctions import exp2

from ...definitions.symbols import n as N
from .. import rewrites
from ..loss import Loss
from ..roles import Kind, Role
from ..lowering import AXIS, Lowered
from ..targets import REGENERATE, Target, source_comment
from .printer import cuda_printer

TEMPLATES = Path(__file__).parent / "templates"
#: the rules of the CUDA target: the C target's, in its order (each is a proved identity)
OPTIMS_CUDA = rewrites.OPTIMS_C
#: and the rules of a row kernel's element math (score, sums, output), after those: every exp as MUFU.EX2's exp2
ELEMENT_RULES_CUDA = (rewrites.RULES["exp_as_exp2"],)
#: names the printed functions already use for row values, arguments and buffers
RESERVED_NAMES = frozenset({"n", "row", "prm", "s", "u", "g", "c", "v", "e", "h", "scale", "row_scale", "x_row",
                            "y_row", "classes"})
#: element arguments an elementwise kernel takes at most (the host API has four slots)
MAX_ELEMENT_INPUTS = 4
#: how a class-axis sum follows the row maximum m (``sum_kind``)
SUM_PLAIN, SUM_EXP, SUM_LINEAR = 0, 1, 2


class CudaCodegenError(ValueError):
    """The lowered function has a form the CUDA templates cannot compute (said how)."""


def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def sum_kind(term: sp.Expr, m: sp.Symbol):
    """How the term of a class-axis sum depends on the row maximum ``m``: ``(SUM_PLAIN, None)`` not at
    all; ``(SUM_EXP, None)`` as ``exp(-m)`` (moving ``m`` by ``d`` multiplies it by ``exp(-d)``);
    ``(SUM_LINEAR, u)`` linearly, ``term = t0 - m*u`` with ``u`` free of ``m``. Anything else: an error
    (a one-pass merge could not follow it)."""
    if m is None or not term.has(m):
        return SUM_PLAIN, None
    d = sp.Dummy("d", real=True)
    if sp.powsimp(term.xreplace({m: m + d}) / term, combine="exp") == sp.exp(-d):
        return SUM_EXP, None
    slope = sp.diff(term, m)
    if not slope.has(m):
        return SUM_LINEAR, -slope
    raise CudaCodegenError(f"the class-axis sum of {term} depends on the row maximum in a way a one-pass merge "
                           f"cannot follow (neither exp(-m) nor linear)")


# --- parameters and cases (written into each kernel's contract, which the runtime reads) -------------

@dataclasses.dataclass(frozen=True)
class KernelParam:
    """A float the kernel takes: a ``scalar`` argument (e.g. ``label_smoothing``) or a loss parameter."""

    field: str           # the name in the Params struct and in the runtime's options
    symbol: sp.Symbol    # the symbol it binds in the expressions
    role: str            # "scalar" or "params"


def kernel_params(loss: Loss) -> list:
    """The Params fields in order: scalar arguments (argument order), then the loss's parameters."""
    params = [KernelParam(a.name, a.symbol, "scalar") for a in loss.args if a.role is Role.SCALAR]
    params += [KernelParam(p.name, p, "params") for p in loss.params]
    names = [p.field for p in params]
    if len(set(names)) != len(names):
        raise CudaCodegenError(f"{loss.name}: parameter names must be distinct, got {names}")
    taken = sorted(set(names) & RESERVED_NAMES)
    if taken:
        raise CudaCodegenError(f"{loss.name}: the parameter name(s) {taken} are taken by the CUDA kernels; rename them")
    return params


def case_functions(loss: Loss) -> list:
    """``(when, backward)`` of each generated case in the order of :meth:`Loss.functions` (a map
    has a forward and a backward function per case): the case index the host API takes."""
    out = []
    for case in loss.cases:
        out.append((case.when, False))
        if loss.kind is Kind.MAP:
            out.append((case.when, True))
    return out


# --- printing one function body -------------------------------------------------------------

def _assigns(low: Lowered) -> dict:
    """The lowering's ``assign`` statements (common subexpressions), symbol -> value, in order."""
    return {s.symbol: s.expr for s in low.statements if s.op == "assign"}


def _inline(expr: sp.Expr, assigns: dict) -> sp.Expr:
    """``expr`` in terms of inputs, gathers, the maximum and the sums only (for analysis, not printing)."""
    for _ in range(len(assigns) + 1):
        if not expr.has(*assigns):
            return expr
        expr = expr.xreplace(assigns)
    raise CudaCodegenError("cyclic assign statements")  # pragma: no cover - the lowering orders them


class _Body:
    """Prints expressions as the body of one device function, as the lowering wrote them.

    ``row_values``: symbol -> C expression of a row value the function may read; ``elements``:
    IndexedBase -> element local name; ``assigns``: the lowering's common subexpressions. The body is
    ``const float`` locals for the row values and the assign statements it uses (in the lowering's
    order), then ``finish(printed expressions)``.
    """

    def __init__(self, row_values: dict, elements: dict, assigns: dict, shapes=None, arguments=()):
        self.row_values = row_values
        self.printer = cuda_printer(elements, shapes, elements)
        self.elements = elements
        self.assigns = assigns
        # symbols printed by name: the function's own arguments, and log2(e) (a literal)
        self.arguments = set(arguments) | {rewrites.LOG2E}

    def _needed(self, exprs) -> list:
        needed, stack = set(), [s for e in exprs for s in e.free_symbols if s in self.assigns]
        while stack:
            symbol = stack.pop()
            if symbol not in needed:
                needed.add(symbol)
                stack.extend(s for s in self.assigns[symbol].free_symbols if s in self.assigns)
        return [symbol for symbol in self.assigns if symbol in needed]

    def _check(self, exprs, known):
        """Only element locals at the class index, known row values, parameters and statements."""
        for expr in exprs:
            for atom in expr.atoms(sp.Indexed):
                if atom.base not in self.elements or atom.indices != (AXIS,):
                    raise CudaCodegenError(f"{atom}: only the class-axis element of an input can be read here")
            rest = expr.replace(lambda e: isinstance(e, sp.Indexed), lambda e: sp.Dummy())
            stray = ({s for s in rest.free_symbols if not isinstance(s, sp.Dummy)} - set(self.row_values) - known
                     - self.arguments)
            if AXIS in stray:
                raise CudaCodegenError(f"{expr}: the class index itself (not an element) cannot be printed")
            if stray:
                raise CudaCodegenError(f"{expr}: {sorted(map(str, stray))} are not available in this function")

    def lines(self, exprs: list, finish) -> list:
        exprs = [sp.sympify(e) for e in exprs]
        statements = self._needed(exprs)
        values = [self.assigns[symbol] for symbol in statements]
        self._check(values + exprs, set(statements))
        used = set().union(*(e.free_symbols for e in values + exprs)) if values + exprs else set()
        locals_ = [(self.printer.doprint(symbol), access) for symbol, access in self.row_values.items()
                   if symbol in used]
        locals_ += [(self.printer.doprint(symbol), self.printer.doprint(value))
                    for symbol, value in zip(statements, values)]
        names = [name for name, _ in locals_] + list(self.elements.values())
        if len(set(names)) != len(names):
            raise CudaCodegenError(f"two values would share a name in the generated code: {sorted(names)} "
                                   f"(rename a parameter)")
        return [f"const float {name} = {value};" for name, value in locals_] + \
            finish([self.printer.doprint(e) for e in exprs])


def hoist_invariants(exprs: list, invariant: set, assigns: dict, prefix: str):
    """Loop-invariant code motion for one pass over a row: the maximal pieces of ``exprs`` that depend
    only on ``invariant`` symbols (row values) and on assign statements built from them become new
    symbols ``prefix0, prefix1, ...``, computed once per row. A product or sum keeps its varying
    arguments and one invariant group (``x1*(coef/s3)``: as the C printer groups loop-invariant
    factors). Returns ``(exprs with the symbols, [(symbol, value)], assigns with the symbols)``."""
    constant = set()
    for symbol, value in assigns.items():  # assigns come in dependency order
        if not value.has(sp.Indexed) and value.free_symbols <= invariant | constant:
            constant.add(symbol)
    known = invariant | constant
    hoisted = {}

    def is_invariant(e):
        return not e.has(sp.Indexed) and e.free_symbols <= known

    def cheap(e):
        return e.is_Number or (e.is_Symbol and e not in constant)

    def name(value):
        if value not in hoisted:
            hoisted[value] = sp.Symbol(f"{prefix}{len(hoisted)}", real=True)
        return hoisted[value]

    def visit(e):
        if is_invariant(e):
            return e if cheap(e) else name(e)
        if isinstance(e, (sp.Add, sp.Mul)):
            fixed = [a for a in e.args if is_invariant(a)]
            varying = [visit(a) for a in e.args if not is_invariant(a)]
            if len(fixed) > 1 or (fixed and not cheap(fixed[0])):
                group = e.func(*fixed)
                fixed = [group if cheap(group) else name(group)]
            return e.func(*(fixed + varying))
        return e.func(*[visit(a) for a in e.args]) if e.args else e

    out = [visit(sp.sympify(e)) for e in exprs]
    in_loop = {symbol: (value if symbol in constant else visit(value)) for symbol, value in assigns.items()}
    return out, [(symbol, value) for value, symbol in hoisted.items()], in_loop


def _indent(lines, depth: int = 2) -> str:
    return "\n".join("  " * depth + line for line in lines)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _when_text(when) -> str:
    return " and ".join(f"{k} == {v!r}" for k, v in when) or "always"


def _comment(text: str, width: int = 200) -> str:
    """One line of a ``//`` comment (no trailing backslash: it would continue the comment)."""
    text = " ".join(str(text).split())
    text = text if len(text) <= width else text[: width - 3] + "..."
    return text.rstrip("\\")


def _params_slots(params: list) -> dict:
    fields = [f"  float {p.field};" for p in params] or ["  // (none)"]
    init = [f"    prm.{p.field} = (float)values[{index}];" for index, p in enumerate(params)]
    return dict(param_fields="\n".join(fields), param_init="\n".join(init) or "    (void)values;",
                num_params=str(len(params)))


def _param_values(params: list) -> dict:
    return {p.symbol: f"prm.{p.field}" for p in params}


def _source(loss: Loss) -> str:
    return "\n".join("//   " + line.rstrip().rstrip("\\") for line in source_comment(loss).splitlines())


# --- row kernels ----------------------------------------------------------------------------

@dataclasses.dataclass
class _RowCase:
    """One lowered function of a row loss or row map, printed as a ``Case`` struct."""

    loss: Loss
    low: Lowered
    index: int
    params: list

    def __post_init__(self):
        args = self.low.args
        rows = [a for a in args if a.role is Role.ROWS]
        if not rows or len(rows) > 2:
            raise CudaCodegenError(f"{self.low.name}: a row kernel takes one or two (R, C) inputs, got {len(rows)}")
        classes = [a for a in args if a.role is Role.CLASSES]
        if len(classes) > 1:
            raise CudaCodegenError(f"{self.low.name}: one per-class vector at most, got {len(classes)}")
        self.x = rows[0].symbol
        self.y = rows[1].symbol if len(rows) > 1 else None
        self.w = classes[0].symbol if classes else None
        self.index_target = any(a.role is Role.INDEX for a in args)
        self.assigns = _assigns(self.low)
        self.gathers = [s for s in self.low.statements if s.op == "gather"]
        maxima = [s for s in self.low.statements if s.op == "max"]
        if len(maxima) > 1:
            raise CudaCodegenError(f"{self.low.name}: one row maximum per kernel, got {len(maxima)}")
        self.m = maxima[0].symbol if maxima else None
        self.score = maxima[0].expr if maxima else None
        self.sums = [s for s in self.low.statements if s.op == "sum"]
        terms = [_inline(s.expr, self.assigns) for s in self.sums]
        for s, term in zip(self.sums, terms):
            if any(term.has(other.symbol) for other in self.sums):
                raise CudaCodegenError(f"{self.low.name}: the sum of {term} needs another sum: that would "
                                       f"take a second reduction pass")
        self.terms = terms
        self.kinds = [sum_kind(term, self.m) for term in terms]
        # pass 1 (score and sums): the gathers and parameters are fixed, the running maximum is not;
        # pass 2 (output elements): every row value is fixed
        fixed1 = {N} | {g.symbol for g in self.gathers} | {p.symbol for p in self.params}
        fixed2 = fixed1 | {s.symbol for s in self.sums} | ({self.m} if self.m is not None else set())
        linear = [u for kind, u in self.kinds if kind == SUM_LINEAR]
        pass1 = [self.score if self.score is not None else sp.S.Zero] + [s.expr for s in self.sums] + linear
        pass1, self.hoisted1, self.assigns1 = hoist_invariants(pass1, fixed1, self.assigns, "h")
        self.score_printed, self.sums_printed, self.u_printed = (
            pass1[0], pass1[1:1 + len(self.sums)], pass1[1 + len(self.sums):])
        # each row's logsumexp ("lse") the template computes itself from the sum of exponentials
        self.outputs = {o.name: (o.expr, o.scatter) for o in self.low.outputs if o.name != "lse"}
        row_outputs = [name for name in self.outputs if name in self.low.function.per_row]
        dense_outputs = [name for name in self.outputs if name not in self.low.function.per_row]
        if len(row_outputs) > 1 or len(dense_outputs) != 1:
            raise CudaCodegenError(f"{self.low.name}: a row kernel writes at most one value per row and one "
                                   f"output row, got {row_outputs} and {dense_outputs}")
        self.row_output = row_outputs[0] if row_outputs else None
        self.dense_output = dense_outputs[0]
        (self.dense_printed,), self.hoisted2, self.assigns2 = hoist_invariants(
            [self.outputs[self.dense_output][0]], fixed2, self.assigns, "h")

    def lse_sum(self) -> int:
        """The index of the sum of ``exp(score - m)`` (the row's logsumexp is ``m + log`` of it), or -1."""
        if self.m is None:
            return -1
        target = sp.exp(_inline(self.score, self.assigns) - self.m)
        return next((j for j, term in enumerate(self.terms) if sp.simplify(term - target) == 0), -1)


def collect_by_element(expr: sp.Expr) -> sp.Expr:
    """``expr`` as a sum of (row-invariant coefficient) x (a distinct product of the element's values: ``z[a]``,
    ``w[a]``, ``e``, functions of them): the top-level products of sums multiplied out (not inside functions:
    an exponent stays whole) and the terms with the same element part added, so that each element costs one
    multiply-add per distinct part (``e*h0 + e*h1*u**2 + ...`` becomes ``e*(h0 + h1*u**2)``'s two terms)."""
    expr = sp.expand(expr, deep=False)
    varying = list(expr.atoms(sp.Indexed)) + ([CACHED] if expr.has(CACHED) else [])
    if not varying:
        return expr
    groups: dict = {}
    for term in sp.Add.make_args(expr):
        coefficient, part = term.as_independent(*varying, as_Add=False)
        groups[part] = groups.get(part, sp.S.Zero) + coefficient
    return sp.Add(*[coefficient * part for part, coefficient in groups.items()])


#: the output pass's factor (``mean``'s 1/W times the call's factor): a row value of ``dense_terms``
SCALE = sp.Symbol("row_scale", real=True)
#: an element's value computed by the sums pass and reused by the output pass (``e``: ``exp(z_a - m)``)
CACHED = sp.Symbol("e", real=True)


class _CudaRowCase(_RowCase):
    """A row case as the CUDA skeleton runs it (``rows.cuh``): the row maximum first, then the sums at that
    maximum (no running maximum: nothing to rescale), then the output. Each pass's expressions are the
    lowering's with its statements inlined and every ``exp`` rewritten by the proved rule ``exp_as_exp2``
    (``exp(z - m) = exp2(log2(e)*(z - m))``), then split into what is computed once per row (hoisted:
    ``score_terms``, ``sums_terms``, ``dense_terms``) and per element. An exponential of the element that both a
    sum and the output contain is computed once, by the sums pass (``e``), and read back by the output pass
    (``kCache``); the output is multiplied by the call's scale inside ``dense`` (the scale joins the row factors)."""

    def __post_init__(self):
        super().__post_init__()
        def inline(expr):
            return rewrites.optimize(_inline(sp.sympify(expr), self.assigns), ELEMENT_RULES_CUDA)

        fixed0 = {N, rewrites.LOG2E} | {g.symbol for g in self.gathers} | {p.symbol for p in self.params}
        fixed1 = fixed0 | ({self.m} if self.m is not None else set())
        fixed2 = fixed1 | {s.symbol for s in self.sums} | {SCALE}
        score = inline(self.score) if self.m is not None else sp.S.Zero
        sums = [inline(s.expr) for s in self.sums]
        dense = inline(self.outputs[self.dense_output][0])
        # the element value the output reuses: an exponential of the element that a sum computes too
        in_sums = set().union(*(term.atoms(exp2) for term in sums)) if sums else set()
        shared = sorted((a for a in dense.atoms(exp2) if a in in_sums and a.has(sp.Indexed)), key=sp.default_sort_key)
        self.cached = shared[0] if shared else None
        if self.cached is not None:
            dense = dense.xreplace({self.cached: CACHED})
        dense = sp.Add(*[SCALE * term for term in sp.Add.make_args(collect_by_element(dense))])
        extra = [self.cached] if self.cached is not None else []
        (self.score_c,), self.hoisted0_c, _ = hoist_invariants([score], fixed0, {}, "h")
        out1, self.hoisted1_c, _ = hoist_invariants(sums + extra, fixed1, {}, "h")
        self.sums_c, self.cache_c = out1[:len(sums)], (out1[len(sums)] if extra else None)
        out2, self.hoisted2_c, _ = hoist_invariants([dense] + extra, fixed2, {}, "h")
        self.dense_c, self.element_c = out2[0], (out2[1] if extra else None)
        if self.dense_c.has(SCALE):  # the scale alone in a factor: a row value of its own
            symbol = sp.Symbol(f"h{len(self.hoisted2_c)}", real=True)
            self.hoisted2_c = self.hoisted2_c + [(symbol, SCALE)]
            self.dense_c = self.dense_c.xreplace({SCALE: symbol})
        self.reads = {"score": self._reads([score]), "sums": self._reads(sums + extra), "dense": self._reads([dense])}

    def _reads(self, exprs) -> str:
        """The inputs ``exprs`` read, as the skeleton's bits (``kReadX | kReadW``), or 0."""
        bases = {a.base for e in exprs for a in sp.sympify(e).atoms(sp.Indexed)}
        bits = [bit for symbol, bit in ((self.x, "kReadX"), (self.y, "kReadY"), (self.w, "kReadW"))
                if symbol is not None and symbol in bases]
        return " | ".join(bits) or "0"

    # names in printed code
    def elements(self) -> dict:
        out = {self.x: f"{self.x.label}_a"}
        if self.y is not None:
            out[self.y] = f"{self.y.label}_a"
        if self.w is not None:
            out[self.w] = f"{self.w.label}_a"
        return out

    def row_values(self, stage: str, hoisted=()) -> dict:
        """What a function may read: ``score`` the gathers and parameters; ``sums`` also the row maximum;
        ``row`` (loss, output, scatter) also the sums; ``dense_terms`` also the scale; ``hoisted``: the pass's
        precomputed values ``h[k]``."""
        values = {symbol: f"h[{k}]" for k, (symbol, _) in enumerate(hoisted)}
        values[N] = "row.n"
        values.update({g.symbol: f"row.g[{j}]" for j, g in enumerate(self.gathers)})
        if self.m is not None and stage != "score":
            values[self.m] = "row.m"
        if stage in ("row", "dense_terms"):
            values.update({s.symbol: f"row.s[{j}]" for j, s in enumerate(self.sums)})
        if stage == "dense_terms":
            values[SCALE] = "scale"
        values.update(_param_values(self.params))
        return values

    # printed pieces
    def gather_lines(self) -> list:
        sources = {self.x: "x_row", self.y: "y_row"}
        lines = []
        for j, g in enumerate(self.gathers):
            base = g.expr.base
            if base == self.w:
                lines.append(f"g[{j}] = classes != nullptr ? to_float<T>(classes[c]) : 1.0f;  // {g.symbol}")
            elif base in sources and base is not None:
                lines.append(f"g[{j}] = to_float<T>({sources[base]}[c]);  // {g.symbol}")
            else:
                raise CudaCodegenError(f"{self.low.name}: cannot gather {g.expr}")
        return lines or ["(void)x_row; (void)y_row; (void)classes; (void)c; (void)g;"]

    def sums_lines(self) -> list:
        """``e = <the cached value>;`` (or 0), then ``s[j] += <term>;`` with ``e`` in the terms."""
        body = _Body(self.row_values("sums", self.hoisted1_c), self.elements(), {}, self.low.shapes, [CACHED])
        slots = [f"s[{j}]" for j in range(len(self.sums))]
        if self.cache_c is None:
            return body.lines(list(self.sums_c), lambda printed: ["e = 0.0f;"] +
                              [f"{slot} += {p};" for slot, p in zip(slots, printed)])
        terms = [term.xreplace({self.cache_c: CACHED}) for term in self.sums_c]
        return body.lines([self.cache_c] + terms, lambda printed: [f"e = {printed[0]};"] +
                          [f"{slot} += {p};" for slot, p in zip(slots, printed[1:])])

    def function_lines(self, expr, stage: str, dense: bool, hoisted=(), assigns=None, arguments=()) -> list:
        body = _Body(self.row_values(stage, hoisted), self.elements() if dense else {},
                     self.assigns if assigns is None else assigns, self.low.shapes, arguments)
        return body.lines([expr], lambda printed: [f"return {printed[0]};"])

    def terms_lines(self, hoisted, stage: str) -> list:
        """The body of ``*_terms``: ``h[k] = value``, once per row."""
        body = _Body(self.row_values(stage), {}, self.assigns, self.low.shapes)
        return body.lines([value for _, value in hoisted],
                          lambda printed: [f"h[{k}] = {p};  // {symbol}" for k, ((symbol, _), p)
                                           in enumerate(zip(hoisted, printed))])

    def render(self) -> str:
        loss_expr = self.outputs[self.row_output][0] if self.row_output else sp.S.Zero
        dense_expr, scatter_expr = self.outputs[self.dense_output]
        names = self.elements()
        xa = names[self.x]
        ya = names[self.y] if self.y is not None else "unused_y"
        wa = names[self.w] if self.w is not None else "unused_w"
        kind = "backward (vector-Jacobian product)" if self.low.name.endswith("_backward") else "forward"
        sums_doc = "; ".join(f"{s.symbol} = sum_a {term}" for s, term in zip(self.sums, self.terms)) or "(none)"
        defaults = {"kIndexTarget": False, "kSecondRow": False, "kHasMax": False, "kScatter": False, "kCache": False,
                    "kSums": 0, "kLseSum": -1, "kHoisted0": 0, "kHoisted1": 0, "kHoisted2": 0,
                    "kReadsScore": "0", "kReadsSums": "0", "kReadsDense": "0"}  # RowCase's, in rows.cuh
        values = {"kIndexTarget": self.index_target, "kSecondRow": self.y is not None, "kHasMax": self.m is not None,
                  "kScatter": scatter_expr is not None, "kCache": self.cached is not None, "kSums": len(self.sums),
                  "kLseSum": self.lse_sum(), "kHoisted0": len(self.hoisted0_c), "kHoisted1": len(self.hoisted1_c),
                  "kHoisted2": len(self.hoisted2_c), "kReadsScore": self.reads["score"],
                  "kReadsSums": self.reads["sums"], "kReadsDense": self.reads["dense"]}
        constants = {name: ("bool" if isinstance(value, bool) else "int", _bool(value) if isinstance(value, bool)
                            else str(value)) for name, value in values.items() if value != defaults[name]}
        functions = {"dense": self.function_lines(self.dense_c, "row", dense=True, hoisted=self.hoisted2_c,
                                                  assigns={}, arguments=[CACHED])}
        if self.gathers:
            functions["gather"] = self.gather_lines()
        if self.hoisted0_c:
            functions["score_terms"] = self.terms_lines(self.hoisted0_c, "score")
        if self.m is not None:
            functions["score"] = self.function_lines(self.score_c, "score", dense=True, hoisted=self.hoisted0_c,
                                                     assigns={})
        if self.hoisted1_c:
            functions["sums_terms"] = self.terms_lines(self.hoisted1_c, "sums")
        if self.sums:
            functions["sums"] = self.sums_lines()
        if self.row_output:
            functions["loss"] = self.function_lines(loss_expr, "row", dense=False)
        if self.hoisted2_c:
            functions["dense_terms"] = self.terms_lines(self.hoisted2_c, "dense_terms")
        if self.element_c is not None:
            functions["element"] = self.function_lines(self.element_c, "row", dense=True, hoisted=self.hoisted2_c,
                                                       assigns={})
        if scatter_expr is not None:
            functions["scatter"] = self.function_lines(scatter_expr, "row", dense=False)
        cache_doc = (f"\n//   computed once per element: e = {_comment(_inline(self.cached, {}))} (the sums pass keeps it)"
                     if self.cached is not None else "")
        return template("rows_case.tmpl.cu").substitute(
            when=f"{self.index} ({kind}, {_when_text(self.low.function.when)}): {self.low.name}",
            max_doc=_comment(f"{self.m} = max_a {_inline(self.score, self.assigns)}") if self.m is not None else "(none)",
            sums_doc=_comment(sums_doc),
            loss_doc=(_comment(f"{self.row_output} = {_inline(loss_expr, self.assigns)}") if self.row_output
                      else "(none)"),
            dense_doc=_comment(f"{self.dense_output}[a] = {_inline(dense_expr, self.assigns)}") + cache_doc,
            scatter_doc=(f"\n//   at the target class: {self.dense_output}[c] += "
                         f"{_comment(_inline(scatter_expr, self.assigns))}" if scatter_expr is not None else ""),
            struct_name=f"Case{self.index}", members=_members(constants, functions, dict(x=xa, y=ya, w=wa)))


#: the signatures of a Case struct's functions (symxent/cuda/rows.cuh: RowCase), by name; ``${x}`` / ``${y}`` /
#: ``${w}``: the element's local names
ROW_CASE_SIGNATURES = {
    "gather": "template <typename T>\n__device__ static __forceinline__ void gather(const T* x_row, const T* y_row, "
              "const T* classes, int64_t c,\n                                              float* g)",
    "score_terms": "__device__ static __forceinline__ void score_terms(const Row& row, const Params& prm, float* h)",
    "score": "__device__ static __forceinline__ float score(float ${x}, float ${y}, float ${w}, const Row& row,\n"
             "                                             const float* h, const Params& prm)",
    "sums_terms": "__device__ static __forceinline__ void sums_terms(const Row& row, const Params& prm, float* h)",
    "sums": "__device__ static __forceinline__ void sums(float ${x}, float ${y}, float ${w}, const Row& row, "
            "const float* h,\n                                            const Params& prm, float* s, float& e)",
    "loss": "__device__ static __forceinline__ float loss(const Row& row, const Params& prm)",
    "dense_terms": "__device__ static __forceinline__ void dense_terms(const Row& row, const Params& prm, float scale, "
                   "float* h)",
    "element": "__device__ static __forceinline__ float element(float ${x}, float ${y}, float ${w}, const Row& row,\n"
               "                                                const float* h, const Params& prm)",
    "dense": "__device__ static __forceinline__ float dense(float ${x}, float ${y}, float ${w}, float e, "
             "const Row& row,\n                                              const float* h, const Params& prm)",
    "scatter": "__device__ static __forceinline__ float scatter(const Row& row, const Params& prm)",
}


def _members(constants: dict, functions: dict, names: dict) -> str:
    """A Case struct's members: the constants that differ from ``RowCase``'s defaults (one line per type)
    and the functions it prints (in ``ROW_CASE_SIGNATURES`` order)."""
    lines = []
    for ctype in ("bool", "int"):
        pairs = [f"{name} = {value}" for name, (kind, value) in constants.items() if kind == ctype]
        if pairs:
            lines.append(f"  static constexpr {ctype} {', '.join(pairs)};")
    for name, body in ((n, functions[n]) for n in ROW_CASE_SIGNATURES if n in functions):
        signature = Template(ROW_CASE_SIGNATURES[name]).substitute(names)
        lines.append(_indent(signature.split("\n"), 1) + " {")
        lines.append(_indent(body, 2))
        lines.append("  }")
    return "\n".join(lines)


# --- elementwise kernels ----------------------------------------------------------------------

@dataclasses.dataclass
class _ElementwiseCase:
    loss: Loss
    low: Lowered
    index: int
    params: list
    inputs: list  # the element argument symbols, in kernel order

    def render(self) -> str:
        assigns = _assigns(self.low)
        outputs = {o.name: o.expr for o in self.low.outputs}
        if set(outputs) != {"loss", "grad"}:
            raise CudaCodegenError(f"{self.low.name}: an elementwise kernel writes loss and grad, got {sorted(outputs)}")
        values = {symbol: f"v[{j}]" for j, symbol in enumerate(self.inputs)}
        values.update(_param_values(self.params))

        def body(expr):
            return _indent(_Body(values, {}, assigns).lines([expr], lambda printed: [f"return {printed[0]};"]), 2)

        return template("elementwise_case.tmpl.cu").substitute(
            when=f"{self.index} ({_when_text(self.low.function.when)}): {self.low.name}",
            loss_doc=_comment(_inline(outputs["loss"], assigns)), grad_doc=_comment(_inline(outputs["grad"], assigns)),
            struct_name=f"Case{self.index}", loss_body=body(outputs["loss"]), grad_body=body(outputs["grad"]))


# --- the target -------------------------------------------------------------------------------

class CudaTarget(Target):
    """CUDA C++ for sm_90 (H100): row kernels on thread-block clusters, elementwise kernels."""

    name = "cuda"
    optims = OPTIMS_CUDA
    element_rules = ELEMENT_RULES_CUDA
    templates = {Kind.ROW: "rows.tmpl.cu", Kind.MAP: "rows.tmpl.cu", Kind.ELEMENTWISE: "elementwise.tmpl.cu"}
    kinds = frozenset(templates)  # the vocab-parallel shard kernels (row_sums, row_gradient) are CPU/torch ones

    def binding(self, loss: Loss) -> str:
        """The pybind11 module source the runtime compiles next to the ``.cu`` file: the runtime's binding
        header instantiated for ``loss`` (the host API is declared once, in ``symxent/cuda/api.h``)."""
        which = "ELEMENTWISE" if loss.kind is Kind.ELEMENTWISE else "ROWS"
        return f'#include "symxent/cuda/binding.h"\nSYMXENT_CUDA_{which}_BINDING({loss.name})\n'

    def contract(self, loss: Loss) -> dict:
        """What ``symxent.runtime.cuda.CudaContract`` holds for ``loss``, in plain values (roles as strings)."""
        return dict(name=loss.name, kind=str(loss.kind),
                    args=tuple((a.name, str(a.role)) for a in loss.args),
                    params=tuple((p.field, p.role) for p in kernel_params(loss)),
                    flags=tuple(a.name for a in loss.args if a.role is Role.FLAG),
                    cases=tuple((tuple(when), backward) for when, backward in case_functions(loss)),
                    pybind=self.binding(loss))

    def contract_module(self, loss: Loss) -> str:
        """The checked-in ``NAME.py``: the contract the runtime reads, with the pybind11 source."""
        contract = self.contract(loss)
        if "'''" in contract["pybind"]:
            raise CudaCodegenError(f"{loss.name}: the binding source contains triple quotes")
        return template("cuda_binding.tmpl.py").substitute(
            title=f"{loss.name} for cuda (generated): the contract and binding of {loss.name}.cu", command=REGENERATE,
            source=source_comment(loss), name=loss.name, name_repr=repr(loss.name), kind=repr(contract["kind"]),
            args=repr(contract["args"]), params=repr(contract["params"]), flags=repr(contract["flags"]),
            cases=repr(contract["cases"]), pybind=contract["pybind"].rstrip()).rstrip() + "\n"

    def render(self, loss: Loss, lowered: list) -> dict:
        if loss.kind not in self.templates:
            raise CudaCodegenError(f"{loss.name}: no CUDA template for kind {loss.kind!r}")
        params = kernel_params(loss)
        title = f"{loss.name} for CUDA (generated): {loss.doc}" if loss.doc else f"{loss.name} for CUDA (generated)"
        slots = dict(title=_comment(title, 100), command=REGENERATE, source=_source(loss),
                     name=loss.name, **_params_slots(params))
        if loss.kind is Kind.ELEMENTWISE:
            inputs = [a.symbol for a in loss.args if a.role is Role.ELEMENTS]
            if not 1 <= len(inputs) <= MAX_ELEMENT_INPUTS:
                raise CudaCodegenError(f"{loss.name}: 1 to {MAX_ELEMENT_INPUTS} element inputs, got {len(inputs)}")
            cases = [_ElementwiseCase(loss, low, index, params, inputs) for index, low in enumerate(lowered)]
            text = template(self.templates["elementwise"]).substitute(
                num_inputs=str(len(inputs)), input_names=", ".join(str(s) for s in inputs),
                cases="\n".join(c.render() for c in cases),
                case_list=", ".join(f"Case{c.index}" for c in cases), **slots)
        else:
            cases = [_CudaRowCase(loss, low, index, params) for index, low in enumerate(lowered)]
            text = template(self.templates[loss.kind]).substitute(
                max_gathers=str(max([len(c.gathers) for c in cases] + [1])),
                max_sums=str(max([len(c.sums) for c in cases] + [1])),
                cases="\n".join(c.render() for c in cases),
                case_list=", ".join(f"Case{c.index}" for c in cases), **slots)
        return {f"{loss.name}.cu": text.rstrip() + "\n", f"{loss.name}.py": self.contract_module(loss)}
