"""What the generator generates: a :class:`Loss` (a row or elementwise loss, or a row map such as
softmax) with its kernel signature, the catalogue :data:`LOSSES` of the built-in kernels, and
:data:`SHARD_KERNELS`, the per-shard kernels of vocab-parallel cross-entropy (``symxent.distributed``).

A loss is data: its expression from the catalogue (``symxent.definitions``), the vector it is
differentiated by, and the arguments of the kernel. :meth:`Loss.functions` derives what each
kernel function computes (the loss and its gradient, or a map and its vector-Jacobian product);
the driver rewrites, lowers and prints them. The catalogue's losses and a user's own loss
(:meth:`Loss.from_formula`, :meth:`Loss.from_expr`) take the same path.
"""
from __future__ import annotations

import dataclasses
import re
import struct
from dataclasses import dataclass, field
from typing import Callable, Optional

import sympy as sp

from .. import definitions as d
from ..definitions.symbols import c as C_INDEX, k as K_INDEX, n as N
from .nodes import BOUND, ClassAxisNode, LogSumExp, recognise
from .roles import Kind, Role

#: argument roles by name (the type is roles.Role)
ROLES = {role.value: role for role in Role}


@dataclass(frozen=True)
class Arg:
    """One kernel argument: its name in the generated code, its role (:data:`ROLES`), what it binds.

    ``supplies``: for a ``row`` or ``scalar`` argument, a reduction over the whole row that the caller
    computes and passes in (e.g. after an all-reduce over the shards of the row): ``logsumexp(z)``,
    ``Sum(w[j], (j, 0, n - 1))``. The derived outputs read it from the argument (:meth:`Loss.supply`)
    instead of computing it from the row the kernel sees.
    """

    name: str
    role: Role
    symbol: object = None
    supplies: object = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown argument role {self.role!r}; known: {sorted(ROLES)}")
        object.__setattr__(self, "role", Role(self.role))  # a role may be given by its name
        if self.supplies is not None and not self.role.may_supply:
            raise ValueError(f"argument {self.name!r}: only a 'row' or 'scalar' argument supplies a value, "
                             f"not a {self.role!r} one")


@dataclass(frozen=True)
class Case:
    """The expression a loss has when its flag/scalar arguments take the values in ``when``
    (kind ``row_sums``: its named outputs, ``((name, expression), ...)``)."""

    when: tuple  # ((argument name, value), ...); () matches always
    expr: object


@dataclass(frozen=True)
class KernelFunction:
    """One generated function: what it takes and the expressions of what it returns.

    ``outputs`` are (name, expression) pairs; row and map kernels write them with the class-axis
    element index ``axis`` (``k``) free. ``optional`` outputs are computed only when ``want_grad``.
    """

    name: str
    args: tuple
    outputs: tuple
    optional: frozenset = frozenset()
    axis: Optional[sp.Symbol] = None
    when: tuple = ()
    #: outputs with one value per row (the others have one per row and class, or per element)
    per_row: frozenset = frozenset({"loss"})
    #: names of the rewrite rules for these outputs; None: the target's stabilising rules (see :attr:`Loss.rules`)
    rules: Optional[tuple] = None


@dataclass(frozen=True)
class Loss:
    """A loss (or row map) to generate kernels for.

    kind ``row``: ``expr`` is one row's loss, a function of the row vector ``wrt`` (symbolic length
    ``n``); the kernel returns ``(loss (R,), grad (R, C) or None)``.
    kind ``elementwise``: ``expr`` is one element's loss, ``wrt`` a Symbol; ``(loss, grad or None)``.
    kind ``map``: ``expr`` is element ``k`` of a row map (softmax); the kernel returns the map and
    has a ``backward(out, grad_output)`` (the vector-Jacobian product, in terms of ``out``).
    kind ``row_sums``: the case's ``expr`` is ``((name, expression), ...)``, one value per row each
    (class sums of the row ``wrt``, computed as written; no derivative); the kernel returns them in
    that order, the names in ``optional`` only when its last argument ``switch`` is true (else None).
    kind ``row_gradient``: ``expr`` is a row objective; the kernel returns only ``grad`` (R, C),
    ``d expr / d wrt[k]`` (a backward kernel: the upstream gradient enters through the arguments).
    """

    name: str
    kind: Kind
    args: tuple
    cases: tuple
    wrt: object
    doc: str = ""
    #: applied to the expression before differentiating (e.g. a clamp written as Piecewise)
    before_derivative: Optional[Callable] = None
    #: ``(derivative, case) -> gradient``: the gradient as the reference defines it where that is not the exact
    #: derivative (torch clamps BCE's denominator); it checks the derivative it is given and states the change
    after_derivative: Optional[Callable] = None
    #: map kernels: the output and upstream-gradient rows of ``backward``
    backward_args: tuple = ()
    params: tuple = field(default=())
    #: names of the rewrite rules (``rewrites.RULES``) to apply instead of the target's stabilising ones, for
    #: outputs already written in a stable form (``recognise`` is then skipped too); None: the target's rules
    rules: Optional[tuple] = None
    #: kind ``row_sums``: the bool argument (last in the call) that switches the ``optional`` outputs on
    switch: str = ""
    optional: tuple = ()
    #: kind ``row``: the kernel also returns each row's ``logsumexp(wrt)`` (after the gradient)
    returns_lse: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        object.__setattr__(self, "kind", Kind(self.kind))  # a kind may be given by its name
        if self.kind is Kind.ROW_SUMS:
            names = [name for case in self.cases for name, _ in case.expr]
            unknown = set(self.optional) - set(names)
            if unknown or (self.optional and not self.switch):
                raise ValueError(f"{self.name}: optional outputs {sorted(self.optional)} need a switch and must be "
                                 f"among the outputs {names}")

    # --- construction of user losses ---------------------------------------------------

    @classmethod
    def from_expr(cls, expr: sp.Expr, name: str = "user_loss", logits: str = "z", doc: str = "") -> "Loss":
        """A row loss from a SymPy expression in the logits row ``z[...]`` (``vector("z")``), the
        target class index ``c`` and scalar parameters (every other free symbol, e.g. ``gamma``).

        Its kernel is ``kern(z, target, params, want_grad)``; ``params`` maps each parameter's name
        to a float.
        """
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"loss name {name!r}: use lower-case letters, digits and '_' (a Python identifier)")
        expr = d.as_expr(expr, "expr")  # a SymPy expression: strings go through Loss.from_formula
        bases = {e.base for e in expr.atoms(sp.Indexed)}
        rows = [b for b in bases if str(b.label) == logits]
        if not rows:
            raise ValueError(f"the loss does not use the logits row {logits!r} (write it as {logits}[c], "
                             f"softmax({logits}), logsumexp({logits}), ...)")
        others = sorted(str(b.label) for b in bases if b not in rows)
        if others:
            raise ValueError(f"a user loss takes one logits row {logits!r}, a target index c and scalar "
                             f"parameters; it also uses the vectors {others}")
        bound = {lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}
        labels = {b.label for b in bases}
        scalars = {s for s in expr.free_symbols if isinstance(s, sp.Symbol)} - bound - labels - {N, C_INDEX}
        params = sorted((s for s in scalars if not s.is_integer), key=lambda s: s.name)
        index_like = sorted(s.name for s in scalars if s.is_integer)
        if index_like:
            raise ValueError(f"free class indices {index_like}: a row loss may index the logits only by "
                             f"the target c or a summation index")
        args = (Arg("z", "rows", rows[0]), Arg("target", "index", C_INDEX), Arg("params", "params"))
        return cls(name, "row", args, (Case((), expr),), rows[0], doc or f"user loss {expr}", params=tuple(params))

    @classmethod
    def from_formula(cls, text: str, name: str = "user_loss", logits: str = "z") -> "Loss":
        """A row loss from a formula string, read by the safe parser (``symxent.prove.parse``),
        e.g. ``"-(1 - softmax(z)[c])**gamma * log_softmax(z)[c]"`` (focal loss)."""
        from ..prove.parse import parse_formula
        expr = parse_formula(text)
        if isinstance(expr, sp.Rel):
            raise ValueError("a loss is an expression, not a relation")
        return cls.from_expr(expr, name=name, logits=logits, doc=f"{name}: {text}")

    # --- what the kernels compute ------------------------------------------------------

    @property
    def wants_grad(self) -> bool:
        return self.kind.has_loss_and_gradient

    @property
    def switch_arg(self) -> Optional[str]:
        """The bool that ends the call and switches the optional outputs on: ``want_grad`` for row and
        elementwise losses, a ``row_sums`` kernel's own :attr:`switch`; None for the others."""
        if self.wants_grad:
            return "want_grad"
        return self.switch or None

    def functions(self) -> list:
        """The kernel functions with their output expressions (loss and derived gradient, map and
        derived vector-Jacobian product, the row sums, or the derived gradient alone), one per case."""
        out = []
        multiple = len(self.cases) > 1
        for number, case in enumerate(self.cases):
            fname = f"_{self.name}_{number}" if multiple else f"_{self.name}"
            if self.kind is Kind.MAP:
                out.append(KernelFunction(fname, self.args, (("out", case.expr),), axis=K_INDEX, when=case.when))
                out.append(self._backward_function(fname + "_backward", case.expr))
                continue
            if self.kind is Kind.ROW_SUMS:
                outputs = tuple((name, self.supply(expr)) for name, expr in case.expr)
                out.append(KernelFunction(fname, self.args, outputs, frozenset(self.optional), K_INDEX, case.when,
                                          frozenset(name for name, _ in outputs), self.rules))
                continue
            expr = case.expr
            to_derive = self.before_derivative(expr) if self.before_derivative else expr
            grad = derivative(to_derive, self.wrt)
            if self.after_derivative:
                grad = self.after_derivative(grad, case)
            grad = self.supply(grad)
            if self.kind is Kind.ROW_GRADIENT:
                out.append(KernelFunction(fname, self.args, (("grad", grad),), axis=K_INDEX, when=case.when,
                                          per_row=frozenset(), rules=self.rules))
                continue
            axis = K_INDEX if self.kind.over_rows else None
            outputs, per_row = (("loss", expr), ("grad", grad)), frozenset({"loss"})
            if self.returns_lse:
                outputs, per_row = outputs + (("lse", d.logsumexp(d.SymbolicVector(self.wrt))),), per_row | {"lse"}
            out.append(KernelFunction(fname, self.args, outputs, frozenset({"grad"}), axis, case.when, per_row))
        return out

    def supply(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with each reduction an argument supplies (:attr:`Arg.supplies`) replaced by that
        argument: ``exp(z[k])/Sum(exp(z[j]))`` is ``exp(z[k] - lse)`` when ``lse`` supplies ``logsumexp(z)``.
        Both sides are compared after :func:`recognise` and with the bound index renamed."""
        table = {_canonical(recognise(d.eliminate(arg.supplies), N)): arg.symbol
                 for arg in self.args if arg.supplies is not None}
        if not table:
            return expr
        return recognise(expr, N).replace(
            lambda e: isinstance(e, (sp.Sum, ClassAxisNode)) and _canonical(e) in table,
            lambda e: table[_canonical(e)])

    def _backward_function(self, fname, element):
        """``grad_input_k = sum_i grad_output_i d out_i / d z_k``, written in ``out`` (not ``z``)."""
        z = self.wrt
        out_base, go_base = (a.symbol for a in self.backward_args)
        b = sp.Dummy("b", integer=True, nonnegative=True)
        vjp = derivative(sp.Sum(go_base[b] * element.xreplace({K_INDEX: b}), (b, 0, N - 1)), z)
        vjp = recognise(vjp, N)
        in_terms_of_out = express_by_output(vjp, recognise(element, N), z, out_base)
        return KernelFunction(fname, self.backward_args, (("grad_input", in_terms_of_out),), axis=K_INDEX)


#: the kinds of :class:`Loss`, by name
KINDS = {kind.value: kind for kind in Kind}


def _canonical(reduction):
    """A one-limit ``Sum`` with its bound index renamed to :data:`BOUND` (equal sums compare equal)."""
    if isinstance(reduction, sp.Sum) and len(reduction.limits) == 1:
        index, lower, upper = reduction.limits[0]
        return sp.Sum(reduction.function.xreplace({index: BOUND}), (BOUND, lower, upper))
    return reduction


# --- derivation ----------------------------------------------------------------------------

def derivative(expr: sp.Expr, wrt) -> sp.Expr:
    """``d expr / d wrt[k]`` (``wrt`` an IndexedBase) or ``d expr / d wrt`` (a Symbol), in the
    derivation stage's canonical form (``symxent.derive.gradient``)."""
    from ..derive import gradient
    if isinstance(wrt, sp.IndexedBase):
        return gradient(expr, wrt, k=K_INDEX).result
    return gradient(expr, wrt).result


def express_by_output(expr: sp.Expr, element: sp.Expr, z: sp.IndexedBase, out: sp.IndexedBase) -> sp.Expr:
    """Replace every ``z[m]`` by its value in terms of ``out[m] = element(m)`` (solving for ``z[m]``
    with the row's logsumexp held fixed); an error if ``z`` does not then cancel."""
    lse, zk, ok = sp.Symbol("L", real=True), sp.Symbol("zk", real=True), sp.Symbol("ok", positive=True)
    frozen = element.replace(lambda e: isinstance(e, LogSumExp), lambda e: lse).xreplace({z[K_INDEX]: zk})
    solutions = sp.solve(sp.Eq(ok, frozen), zk)
    if len(solutions) != 1:
        raise ValueError(f"cannot write z[k] in terms of the output {element}: solutions {solutions}")
    inverse = solutions[0]
    body = expr.replace(lambda e: isinstance(e, LogSumExp) and e.has(z), lambda e: lse)
    body = body.replace(lambda e: isinstance(e, sp.Indexed) and e.base == z,
                        lambda e: inverse.xreplace({ok: out[e.indices[0]]}))
    body = sp.expand(body, deep=False)
    if body.has(z) or body.has(lse):
        raise ValueError(f"the backward needs the input {z} itself, not only the output: {body}")
    return body


# --- the catalogue ---------------------------------------------------------------------------

#: the z-loss coefficient (``lse_square_scale`` in Liger-Kernel and flash-attn)
LSE_SQUARE_SCALE = sp.Symbol("lse_square_scale", nonnegative=True)


def with_z_loss(loss: Loss) -> Loss:
    """``loss`` with the scalar argument ``lse_square_scale`` and ``+ lse_square_scale * logsumexp(z)**2`` in
    its general case (PaLM's z-loss, as Liger-Kernel defines it: per row, not weighted by the class weight);
    its special cases hold when ``lse_square_scale == 0``. How ``mean`` divides the z-loss (by the number of
    counted rows, not by the summed class weights) is the caller's: it passes the scale already divided
    accordingly (:mod:`symxent.semantics`, :func:`~symxent.semantics.z_loss_scale`)."""
    if any(a.name == "lse_square_scale" for a in loss.args):
        return loss
    z = d.SymbolicVector(loss.wrt)
    term = LSE_SQUARE_SCALE * d.logsumexp(z) ** 2
    cases = tuple(Case(case.when + (("lse_square_scale", 0),), case.expr) if case.when else Case((), case.expr + term)
                  for case in loss.cases)
    args = loss.args + (Arg("lse_square_scale", "scalar", LSE_SQUARE_SCALE),)
    doc = f"{loss.doc} + lse_square_scale * logsumexp(z)^2"
    return dataclasses.replace(loss, args=args, cases=cases, doc=doc, returns_lse=True)


#: the soft-capping of the logits (Gemma 2): z <- softcap * tanh(z / softcap)
SOFTCAP = sp.Symbol("softcap", positive=True)


def with_softcap(loss: Loss) -> Loss:
    """``loss`` of the soft-capped logits ``softcap * tanh(z / softcap)`` (Gemma 2), named ``<name>_softcap``, with
    the scalar argument ``softcap``: every element of ``z`` in every case replaced (the z-loss too: of the capped
    logits, as the fused linear cross-entropy applies it). The gradient is derived through the cap
    (``1 - tanh^2``), so a kernel folds the capping into its row sweep. No per-row logsumexp is returned (it would
    be of the capped logits)."""
    z = loss.wrt

    def capped(expr):
        return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == z,
                            lambda e: SOFTCAP * sp.tanh(e / SOFTCAP))
    cases = tuple(Case(case.when, capped(case.expr)) for case in loss.cases)
    args = loss.args + (Arg("softcap", "scalar", SOFTCAP),)
    return dataclasses.replace(loss, name=f"{loss.name}_softcap", args=args, cases=cases, returns_lse=False,
                               doc=f"{loss.doc}, of the logits softcap * tanh(z / softcap)")


def _catalogue() -> dict:
    z, w, y = d.vector("z"), d.vector("w"), d.vector("y")
    logp = d.vector("logp")
    out, go = d.vector("out", positive=True), d.vector("grad_output")
    eps = d.epsilon
    p = sp.Symbol("p", positive=True)
    x, t, ew, pw = (sp.Symbol(s, real=True) for s in ("x", "t", "w", "pos_weight"))
    row_ce = (Arg("z", "rows", z.base), Arg("target", "index", C_INDEX), Arg("weight", "classes", w.base),
              Arg("label_smoothing", "scalar", eps))
    row_prob = (Arg("z", "rows", z.base), Arg("target", "rows", y.base), Arg("weight", "classes", w.base),
                Arg("label_smoothing", "scalar", eps))
    smoothing_cases = lambda build: (Case((("label_smoothing", 0),), build(0)), Case((), build(eps)))
    kl = xlogx(t) - t * x
    prob_ce = lambda e: d.softmax_cross_entropy_prob(z, y, w, e)
    bce_args = (Arg("p", "elements", p), Arg("t", "elements", t), Arg("weight", "elements", ew))
    bce_cases = (Case((), d.bce(p, t, ew)),)
    bce_logits_args = (Arg("x", "elements", x), Arg("t", "elements", t), Arg("pos_weight", "elements", pw),
                       Arg("weight", "elements", ew))
    bce_logits_cases = (Case((), d.bce_with_logits(x, t, pw, ew)),)
    kl_args = (Arg("input", "elements", x), Arg("target", "elements", t), Arg("log_target", "flag"))
    kl_cases = (Case((("log_target", True),), sp.exp(t) * (t - x)), Case((("log_target", False),), kl))
    losses = [
        Loss("cross_entropy", "row", row_ce,
             smoothing_cases(lambda e: d.softmax_cross_entropy(z, C_INDEX, w, e)), z.base,
             "(1-eps)(-w_c log softmax_c) + eps/C sum_i(-w_i log softmax_i)"),
        Loss("cross_entropy_prob", "row", row_prob, smoothing_cases(prob_ce), z.base,
             "-sum_i w_i ((1-eps) y_i + eps/C) log softmax_i"),
        Loss("nll", "row", (Arg("logp", "rows", logp.base), Arg("target", "index", C_INDEX),
                            Arg("weight", "classes", w.base)),
             (Case((), d.nll(logp, C_INDEX, w)),), logp.base, "-w_c logp_c"),
        Loss("softmax", "map", (Arg("z", "rows", z.base),), (Case((), d.softmax(z, K_INDEX)),), z.base,
             "softmax(z)_k = exp(z_k) / sum_j exp(z_j)",
             backward_args=(Arg("out", "rows", out.base), Arg("grad_output", "rows", go.base))),
        Loss("log_softmax", "map", (Arg("z", "rows", z.base),), (Case((), d.log_softmax(z, K_INDEX)),), z.base,
             "log_softmax(z)_k = z_k - logsumexp(z)",
             backward_args=(Arg("out", "rows", d.vector("out").base), Arg("grad_output", "rows", go.base))),
        Loss("bce", "elementwise", bce_args, bce_cases, p,
             "-w (t max(log p, -100) + (1 - t) max(log(1 - p), -100)); gradient torch's w (p - t) / max(p (1 - p), 1e-12)",
             before_derivative=unclamped, after_derivative=lambda g, case: torch_bce_gradient(g, p, t, ew)),
        Loss("bce_with_logits", "elementwise", bce_logits_args, bce_logits_cases, x,
             "w ((1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x))"),
        Loss("kl_div", "elementwise", kl_args, kl_cases, x,
             "target (log target - input), or exp(target) (target - input) with log_target"),
        # the gradients with respect to the other arguments torch differentiates (the loss as above, then d / d wrt)
        Loss("bce_target", "elementwise", bce_args, bce_cases, t,
             "bce and its derivative by the target, of the unclamped loss: -w logit(p), as torch",
             before_derivative=unclamped),
        Loss("bce_with_logits_target", "elementwise", bce_logits_args, bce_logits_cases, t,
             "bce_with_logits and its derivative by the target: -w (x + (pos_weight - 1) log_sigmoid(x))"),
        Loss("kl_div_target", "elementwise", kl_args, kl_cases, t,
             "kl_div and its derivative by the target: log t + 1 - x (NaN at t = 0, as torch's xlogy(t, t)), "
             "or exp(t) (t + 1 - x) with log_target",
             after_derivative=lambda g, case: torch_xlogx_gradient(g, t, case)),
        Loss("cross_entropy_prob_target", "row_gradient", row_prob, smoothing_cases(prob_ce), y.base,
             "d/dy_k of -sum_i w_i ((1-eps) y_i + eps/C) log softmax_i = -(1-eps) w_k log softmax_k",
             after_derivative=lambda g, case: by_log_softmax(g, z.base)),
        Loss("cross_entropy_prob_weight", "row_gradient", row_prob, smoothing_cases(prob_ce), w.base,
             "d/dw_k of -sum_i w_i ((1-eps) y_i + eps/C) log softmax_i = -((1-eps) y_k + eps/C) log softmax_k",
             after_derivative=lambda g, case: by_log_softmax(g, z.base)),
    ]
    losses = [with_z_loss(loss) if loss.name in ("cross_entropy", "cross_entropy_prob") else loss for loss in losses]
    # the fused linear cross-entropy's soft-capping, folded into the kernel
    losses += [with_softcap(loss) for loss in losses if loss.name == "cross_entropy"]
    return {loss.name: loss for loss in losses}


#: torch's clamp of the denominator of binary_cross_entropy's input gradient: ``EPSILON = 1e-12`` in its Loss.cpp,
#: a ``float`` constant, so the float32 nearest 1e-12 (9.99999996e-13) in float64 too
BCE_GRAD_EPSILON = sp.Float(struct.unpack("f", struct.pack("f", 1e-12))[0], 17)


def unclamped(expr: sp.Expr) -> sp.Expr:
    """``expr`` with each clamp ``Max(-100, log(.))`` (BCE's) replaced by the log it clamps."""
    return expr.replace(lambda m: isinstance(m, sp.Max) and -100 in m.args,
                        lambda m: sp.Max(*(a for a in m.args if a != -100)))


def torch_bce_gradient(derived: sp.Expr, p, t, w) -> sp.Expr:
    """torch's gradient of binary_cross_entropy by ``p``: ``w (p - t) / max(p (1 - p), 1e-12)``. That is the
    derivative of the unclamped loss, ``w (p - t) / (p (1 - p))`` (checked here against ``derived``), with its
    denominator clamped: it differs from the derivative of the clamped loss wherever ``p (1 - p) < 1e-12``
    (finite where the derivative is infinite, 0 at ``p = t`` in {0, 1})."""
    stated = w * (p - t) / (p * (1 - p))
    if sp.simplify(sp.together(derived - stated)) != 0:
        raise AssertionError(f"the derivative of the unclamped BCE is {derived}, not {stated}")
    return w * (p - t) / sp.Max(p * (1 - p), BCE_GRAD_EPSILON)


def torch_xlogx_gradient(derived: sp.Expr, t, case: Case) -> sp.Expr:
    """kl_div's derivative by the target as torch defines it: torch writes ``t log t`` as ``xlogy(t, t)``,
    whose partial derivatives are ``log t`` (0 at ``t = 0``) and ``t / t`` (NaN at ``t = 0``): the derivative
    ``log t + 1 - x`` where ``t != 0`` (checked here against ``derived``) and NaN at ``t = 0``."""
    if dict(case.when).get("log_target"):
        return derived
    body = derived.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[-1].expr)
    if sp.simplify(body - (sp.log(t) + 1 - sp.Symbol("x", real=True))) != 0:
        raise AssertionError(f"kl_div's derivative by the target is {derived}, not log(t) + 1 - x")
    return sp.Piecewise((sp.nan, sp.Eq(t, 0)), (body, True))


def by_log_softmax(derived: sp.Expr, z: sp.IndexedBase) -> sp.Expr:
    """``derived`` (linear in ``log softmax(z)_k = z[k] - logsumexp(z)``, as the derivatives of cross-entropy by
    its target or weights are) written as ``coefficient * (z[k] - logsumexp(z))``: the difference is then formed
    once, not as expanded terms that cancel (``y_k lse - y_k z_k`` loses every digit at logits of 1e4)."""
    lse = next(iter(derived.atoms(sp.log)))  # log(Sum(exp(z[j]), ...)): the only log of these derivatives
    log_softmax = sp.Symbol("log_softmax_k")
    in_log_softmax = sp.expand(derived.xreplace({z[K_INDEX]: log_softmax + lse}))
    coefficient = in_log_softmax.coeff(log_softmax)
    if sp.expand(in_log_softmax - coefficient * log_softmax) != 0 or coefficient.has(log_softmax, z[K_INDEX], lse):
        raise AssertionError(f"{derived} is not linear in log softmax(z)_k")
    return sp.factor_terms(coefficient) * (z[K_INDEX] - lse)


def xlogx(t):
    """``t log t`` with ``0 log 0 = 0``."""
    return sp.Piecewise((0, sp.Eq(t, 0)), (t * sp.log(t), True))


#: the built-in kernels by name
LOSSES = _catalogue()


# --- the per-shard kernels of vocab-parallel cross-entropy ------------------------------------

def _shard_catalogue() -> dict:
    """``vocab_shard_forward`` and ``vocab_shard_backward`` (call shapes: KERNEL_CONTRACT.md), from the
    class sums of the proved identities ``vocab_parallel_row_loss`` / ``vocab_parallel_grad``
    (:mod:`symxent.prove.vocab_parallel`), written for one shard's row ``z`` of ``n`` classes.

    - forward: the shard's part of each class sum the SUM all-reduce adds, shifted by the supplied
      global row max ``M`` (so ``exp(z - M) <= 1``: already stable; only ``delta_sum`` applies, which
      gathers the target terms, 0 where the shard does not own the target ``t = -1``);
    - backward: the derivative of the row loss ``a (log S - Z_t) + b (log S sum_j w_j - A)`` (the identity's
      right-hand side with ``M = 0`` and its coefficients ``(1-eps) W_t``, ``eps/C`` times the upstream
      gradient passed per row as ``a`` = ``onehot_scale``, ``b`` = ``smoothing_scale``), with the global
      ``logsumexp(z)`` and ``sum_j w_j`` supplied by the caller (``lse``, ``weight_sum``).
    """
    from ..prove import vocab_parallel as vp
    z, w, shift = vp.z, vp.w, vp.M
    t = sp.Symbol("t", integer=True)  # the local target index: -1 where another shard owns it
    local = lambda e: e.xreplace({C_INDEX: t})
    a, b = sp.Symbol("onehot_scale", real=True), sp.Symbol("smoothing_scale", real=True)
    lse, weight_sum = sp.Symbol("lse", real=True), sp.Symbol("weight_sum", real=True)
    forward = Loss(
        "vocab_shard_forward", "row_sums",
        (Arg("z", "rows", z.base), Arg("row_max", "row", shift), Arg("target", "local_index", t),
         Arg("weight", "classes", w.base)),
        (Case((), (("sum_exp", vp.sum_exp()), ("target_logit", local(vp.target_logit())),
                   ("target_weight", local(vp.target_weight())), ("smoothing", vp.smoothing_sum()))),),
        z.base, "one shard's class sums: sum_i exp(z_i - M), z_t - M, w_t (0 where t = -1), sum_i w_i (z_i - M)",
        rules=("delta_sum",), switch="want_smoothing", optional=("smoothing",))
    log_s = sp.log(vp.sum_exp())
    row_loss = local(a * (log_s - vp.target_logit()) + b * (log_s * vp.weight_sum() - vp.smoothing_sum()))
    row_loss = row_loss.xreplace({shift: 0})
    backward = Loss(
        "vocab_shard_backward", "row_gradient",
        (Arg("z", "rows", z.base), Arg("lse", "row", lse, supplies=d.logsumexp(z)),
         Arg("target", "local_index", t), Arg("weight", "classes", w.base), Arg("onehot_scale", "row", a),
         Arg("smoothing_scale", "row", b), Arg("weight_sum", "scalar", weight_sum, supplies=vp.weight_sum()),
         Arg("smoothing", "flag")),
        (Case((("smoothing", False),), row_loss.xreplace({b: 0})), Case((), row_loss)), z.base,
        "d/dz_k of a (logsumexp(z) - z_t) + b (logsumexp(z) sum_j w_j - sum_j w_j z_j) on one shard, "
        "a = onehot_scale, b = smoothing_scale (not read without smoothing, b = 0): "
        "(a + b weight_sum) exp(z - lse) - a onehot(t) - b w")
    return {loss.name: loss for loss in (forward, backward)}


#: the per-shard kernels of ``symxent.distributed`` (their own call shapes, not the loss contract's)
SHARD_KERNELS = _shard_catalogue()
#: every kernel the generator writes and :func:`symxent.codegen.load_kernel` loads
KERNELS = {**LOSSES, **SHARD_KERNELS}
