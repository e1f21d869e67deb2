"""The derivations of the catalogue, each with its textbook result written by hand.

Each :class:`DerivationSpec` builds its function from named inputs, so the same entry gives the
general-n expression (symbolic vectors) and the concrete one (tuples, n = 2, 3, 5) that
:func:`verify_checks` differentiates to cross-check the general result numerically.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from ..definitions import (bce, bce_with_logits, entropy, kl_divergence, logsumexp, nll, softmax,
                           softmax_cross_entropy, softmax_cross_entropy_prob, vector)
from ..definitions import symbols as S
from ..definitions.functions import sigmoid
from .engine import Derivation, Rewrite, SoftmaxElement, gradient, hessian, is_zero, named

#: the concrete numbers of classes of the cross-check
CONCRETE_SIZES = (2, 3, 5)
_INDEX_SYMBOLS = {"c": S.c, "l": S.l}


@dataclass(frozen=True)
class Input:
    """A named input: a ``vector`` (length n), a ``scalar`` or a class ``index``; ``domain`` says
    where random points are drawn (``simplex``: positive and summing to 1, a constraint)."""

    name: str
    kind: str = "vector"
    domain: str = "real"
    symbol: object = None  # the catalogue's own symbol for this quantity (label smoothing: symbols.epsilon)

    def symbolic(self):
        positive = self.domain != "real"
        if self.kind == "vector":
            return vector(self.name, positive=True) if positive else vector(self.name)
        if self.kind == "index":
            return _INDEX_SYMBOLS[self.name]
        if self.symbol is not None:
            return self.symbol
        return sp.Symbol(self.name, positive=True) if self.domain == "positive" else sp.Symbol(self.name, real=True)

    def concrete(self, size: int, index_value: int):
        if self.kind == "vector":
            base = self.symbolic().base
            return tuple(base[m] for m in range(size))
        return sp.Integer(index_value) if self.kind == "index" else self.symbolic()


def _draw(domain: str, rng: random.Random) -> float:
    return {"real": lambda: rng.uniform(-3, 3), "positive": lambda: rng.uniform(0.2, 2),
            "unit": lambda: rng.uniform(0.05, 0.95), "simplex": lambda: rng.uniform(0.1, 1)}[domain]()


@dataclass(frozen=True)
class DerivationSpec:
    """One derivation: the function of its inputs, the variable, and the textbook result by hand."""

    name: str
    title: str
    inputs: tuple
    wrt: str
    loss: Callable[..., sp.Expr]
    expected: Callable[..., sp.Expr]  # of the symbolic inputs and k (and l)
    order: int = 1
    symbol: str = r"\ell"
    definition: Callable[..., sp.Expr] | None = None  # the function as displayed (softmax named)
    collect: Callable[..., tuple] | None = None
    rewrites: tuple = ()

    def symbolic_inputs(self) -> dict:
        return {inp.name: inp.symbolic() for inp in self.inputs}

    def constraints(self) -> tuple:
        """``sum_i v_i = 1`` for every simplex input."""
        return tuple(sp.Eq(sp.Sum(inp.symbolic()[S.i], (S.i, 0, S.n - 1)), 1)
                     for inp in self.inputs if inp.kind == "vector" and inp.domain == "simplex")

    def expected_result(self) -> sp.Expr:
        indices = {"k": S.k, "l": S.l} if self.order == 2 else {"k": S.k}
        return self.expected(**self.symbolic_inputs(), **indices)

    def derive(self, wrt: str | None = None) -> Derivation:
        """The derivation by the entry's variable, or by another input named ``wrt`` (a gradient)."""
        args = self.symbolic_inputs()
        wrt = self.wrt if wrt is None else wrt
        choices = [inp.name for inp in self.inputs if inp.kind != "index"]
        if wrt not in choices:
            raise ValueError(f"{self.name}: cannot differentiate by {wrt!r}; choose one of {', '.join(choices)}")
        options = dict(constraints=self.constraints(), name=self.name, symbol=self.symbol,
                       definition=self.definition(**args) if self.definition else None)
        if wrt != self.wrt:
            return gradient(self.loss(**args), args[wrt], S.k, rewrites=self.rewrites, **options)
        options["collect"] = self.collect(**args) if self.collect else ()
        if self.order == 2:
            return hessian(self.loss(**args), args[wrt], S.k, S.l, **options)
        return gradient(self.loss(**args), args[wrt], S.k, rewrites=self.rewrites, **options)

    __call__ = derive

    @property
    def is_scalar(self) -> bool:
        return next(inp for inp in self.inputs if inp.name == self.wrt).kind == "scalar"


def _softmax_named(z, a):
    return SoftmaxElement(z.base, a, z.length)


def _drop_bce_clamp(expr):
    return expr.replace(lambda e: isinstance(e, sp.Max) and e.has(sp.log),
                        lambda e: next(a for a in e.args if isinstance(a, sp.log)))


KD = sp.KroneckerDelta
_Z, _W, _Y = Input("z"), Input("w", domain="positive"), Input("y", domain="simplex")
_C, _EPS = Input("c", "index"), Input("epsilon", "scalar", "unit", S.epsilon)

_SPECS = (
    DerivationSpec(
        "ce_index", "cross-entropy with an index target, by the logits", (_Z, _C), "z",
        loss=lambda z, c: softmax_cross_entropy(z, c),
        definition=lambda z, c: -sp.log(_softmax_named(z, c)),
        expected=lambda z, c, k, **_: softmax(z, k) - KD(k, c)),
    DerivationSpec(
        "ce_index_weighted", "cross-entropy with class weights, by the logits", (_Z, _W, _C), "z",
        loss=lambda z, w, c: softmax_cross_entropy(z, c, weight=w),
        definition=lambda z, w, c: -w[c] * sp.log(_softmax_named(z, c)),
        expected=lambda z, w, c, k, **_: w[c] * (softmax(z, k) - KD(k, c))),
    DerivationSpec(
        "ce_prob", "cross-entropy with a probability target (sum y = 1), by the logits", (_Z, _Y), "z",
        loss=lambda z, y: softmax_cross_entropy_prob(z, y),
        definition=lambda z, y: -sp.Sum(y[S.i] * sp.log(_softmax_named(z, S.i)), (S.i, 0, S.n - 1)),
        expected=lambda z, y, k, **_: softmax(z, k) - y[k]),
    DerivationSpec(
        "ce_label_smoothing_weighted", "cross-entropy with class weights and label smoothing, by the logits",
        (_Z, _W, _C, _EPS), "z",
        loss=lambda z, w, c, epsilon: softmax_cross_entropy(z, c, weight=w, label_smoothing=epsilon),
        definition=lambda z, w, c, epsilon: (1 - epsilon) * (-w[c] * sp.log(_softmax_named(z, c)))
        + epsilon / S.n * -sp.Sum(w[S.i] * sp.log(_softmax_named(z, S.i)), (S.i, 0, S.n - 1)),
        collect=lambda epsilon, **_: (1 - epsilon, epsilon),
        expected=lambda z, w, c, epsilon, k, **_: (1 - epsilon) * w[c] * (softmax(z, k) - KD(k, c))
        + epsilon / S.n * (sp.Sum(w[S.i], (S.i, 0, S.n - 1)) * softmax(z, k) - w[k])),
    DerivationSpec(
        "nll", "negative log-likelihood with class weights, by the log-probabilities",
        (Input("logp"), _W, _C), "logp",
        loss=lambda logp, w, c: nll(logp, c, weight=w),
        expected=lambda w, c, k, **_: -w[c] * KD(k, c)),
    DerivationSpec(
        "kl", "KL divergence D(p || q), by q", (Input("p", domain="positive"), Input("q", domain="positive")), "q",
        loss=lambda p, q: kl_divergence(p, q), symbol=r"D(p \| q)",
        expected=lambda p, q, k, **_: -p[k] / q[k]),
    DerivationSpec(
        "entropy", "Shannon entropy H(p), by p", (Input("p", domain="positive"),), "p",
        loss=lambda p: entropy(p), symbol=r"H(p)",
        expected=lambda p, k, **_: -(sp.log(p[k]) + 1)),
    DerivationSpec(
        "bce", "binary cross-entropy on a probability, by p",
        (Input("p", "scalar", "unit"), Input("t", "scalar", "unit")), "p",
        loss=lambda p, t: bce(p, t),
        rewrites=(Rewrite(r"the clamp at $-100$ is inactive for $e^{-100} < p < 1 - e^{-100}$", _drop_bce_clamp),),
        expected=lambda p, t, **_: (p - t) / (p * (1 - p))),
    DerivationSpec(
        "bce_with_logits", "binary cross-entropy from a logit, by x",
        (Input("x", "scalar"), Input("t", "scalar", "unit")), "x",
        loss=lambda x, t: bce_with_logits(x, t),
        expected=lambda x, t, **_: sigmoid(x) - t),
    DerivationSpec(
        "bce_with_logits_pos_weight", "binary cross-entropy from a logit with pos_weight and weight, by x",
        (Input("x", "scalar"), Input("t", "scalar", "unit"), Input("p_w", "scalar", "positive"),
         Input("w", "scalar", "positive")), "x",
        loss=lambda x, t, p_w, w: bce_with_logits(x, t, pos_weight=p_w, weight=w),
        expected=lambda x, t, p_w, w, **_: w * ((1 + (p_w - 1) * t) * sigmoid(x) - p_w * t)),
    DerivationSpec(
        "logsumexp_hessian", "Hessian of logsumexp: diag(s) - s s^T", (_Z,), "z", order=2,
        loss=lambda z: logsumexp(z), symbol=r"\operatorname{lse}(z)",
        expected=lambda z, k, l, **_: KD(k, l) * softmax(z, k) - softmax(z, k) * softmax(z, l)),
    DerivationSpec(
        "softmax_jacobian", "Jacobian of softmax: d s_l / d z_k = s_l (delta_kl - s_k)",
        (_Z, Input("l", "index")), "z",
        loss=lambda z, l: softmax(z, l), symbol=r"s_l",
        definition=lambda z, l: _softmax_named(z, l),
        expected=lambda z, l, k, **_: softmax(z, l) * (KD(k, l) - softmax(z, k))),
)

#: name -> spec; calling a spec derives it
DERIVATIONS: dict = {spec.name: spec for spec in _SPECS}


def derive_all() -> dict:
    """Every derivation of the registry, by name."""
    return {name: spec.derive() for name, spec in DERIVATIONS.items()}


# --- checks ---------------------------------------------------------------------------------

def _close(a, b, digits=30) -> bool:
    a, b = sp.N(a, digits), sp.N(b, digits)
    return a.is_number and b.is_number and abs(a - b) <= sp.Float(10) ** (10 - digits) * (1 + abs(b))


def _random_values(spec: DerivationSpec, size, rng: random.Random) -> dict:
    values = {}
    for inp in spec.inputs:
        if inp.kind == "vector":
            drawn = [sp.Float(_draw(inp.domain, rng), 30) for _ in range(size)]
            if inp.domain == "simplex":
                drawn = [v / sp.Add(*drawn) for v in drawn]
            values.update(zip(inp.concrete(size, 0), drawn))
        elif inp.kind == "scalar":
            values[inp.symbolic()] = sp.Float(_draw(inp.domain, rng), 30)
    return values


def concrete_cross_check(spec: DerivationSpec, derivation: Derivation, sizes=CONCRETE_SIZES, seed=0):
    """Compare the general-n result, at n = 2, 3, 5 and every index, with the derivative of the
    concrete-vector function at a random point. Returns (ok, detail)."""
    rng = random.Random(seed)
    if spec.is_scalar:  # n plays no part: compare with the derivative of the untouched function
        args = spec.symbolic_inputs()
        reference = sp.diff(spec.loss(**args), *derivation.wrt)
        for _ in range(3):
            values = _random_values(spec, 0, rng)
            if not _close(derivation.result.xreplace(values), reference.xreplace(values)):
                return False, f"differs from the derivative at {values}"
        return True, "agrees at 3 random points"
    index_names = [inp.name for inp in spec.inputs if inp.kind == "index"]
    count = 0
    for size in sizes:
        values = _random_values(spec, size, rng)
        for index_value in (range(size) if index_names else [0]):
            concrete = {inp.name: inp.concrete(size, index_value) for inp in spec.inputs}
            function = spec.loss(**concrete)
            base = spec.symbolic_inputs()[spec.wrt].base
            specialise = {S.n: size, **{_INDEX_SYMBOLS[name]: index_value for name in index_names}}
            general = derivation.result.xreplace(specialise)
            for point in _derivative_points(spec, size):
                reference = sp.diff(function, *(base[m] for m in point))
                got = general.xreplace(dict(zip((S.k, S.l), point))).doit()
                if not _close(got.xreplace(values), reference.xreplace(values)):
                    return False, f"n={size}, indices {dict(specialise)} {point}: {got} != {reference}"
                count += 1
    return True, f"agrees at n={', '.join(map(str, sizes))} ({count} entries)"


def _derivative_points(spec, size):
    if spec.order == 2:
        return [(a, b) for a in range(size) for b in range(size)]
    return [(a,) for a in range(size)]


def check(spec: DerivationSpec) -> tuple:
    """Derive for general n; prove result == expected; check the displayed definition; cross-check at
    concrete n. Returns (ok, one-line detail)."""
    derivation = spec.derive()
    if is_zero(derivation.result - spec.expected_result()) is not True:
        return False, f"result {derivation.result} not shown equal to expected {spec.expected_result()}"
    if spec.definition is not None:
        shown = spec.definition(**spec.symbolic_inputs())
        if is_zero(named(shown) - derivation.expr) is not True:
            return False, f"displayed definition {shown} not shown equal to the function"
    ok, detail = concrete_cross_check(spec, derivation)
    if not ok:
        return False, detail
    return True, f"= {named_result(derivation)} (general n, {derivation.seconds:.3f} s); {detail}"


def named_result(derivation: Derivation) -> sp.Expr:
    """The result as its last step shows it (softmax named)."""
    return derivation.steps[-1].expr


def verify_checks() -> list:
    """One check per registry entry, for ``symxent verify``."""
    from ..verify import Check
    return [Check("derive", spec.name, lambda spec=spec: check(spec)) for spec in DERIVATIONS.values()]
