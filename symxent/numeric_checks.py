"""The catalogue evaluated at random points against an independent implementation (torch).

Each :class:`NumericCase` builds a catalogue expression for a *symbolic* number of classes n,
instantiates it at a concrete n (2, 3, 7) with random values, evaluates it with mpmath-backed
``evalf``, and compares with ``torch.nn.functional`` (or torch's elementwise functions) in float64.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from . import definitions as d
from .definitions.symbols import SymbolicVector

SIZES = (2, 3, 7)
#: relative tolerance of the comparison (torch in float64 against 30-digit evalf)
RTOL = 1e-10


def instantiate(expr: sp.Expr, size: int, values: dict, scalars: dict | None = None) -> sp.Expr:
    """Substitute ``n = size``, expand the class sums, and replace ``v[m]`` by ``values[v][m]``."""
    expr = expr.subs(d.n, size)
    if scalars:
        expr = expr.subs(scalars)
    expr = expr.doit()
    replacements = {}
    for vec, numbers in values.items():
        base = vec.base if isinstance(vec, SymbolicVector) else vec
        replacements.update({base[m]: sp.Float(v, 30) for m, v in enumerate(numbers)})
    return expr.xreplace(replacements)


def evaluate(expr: sp.Expr, size: int, values: dict, scalars: dict | None = None) -> float:
    value = instantiate(expr, size, values, scalars).evalf(30)
    if not value.is_number:
        raise ValueError(f"expression did not evaluate to a number: {value}")
    return float(value)


@dataclass(frozen=True)
class NumericCase:
    """``build() -> (expr, vectors, scalars)``; ``reference(values, scalars, size) -> float`` via torch."""

    name: str
    build: Callable
    reference: Callable
    draw: Callable  # draw(rng, size) -> (values per vector name, scalar values)


def _logits(rng, size):
    return [rng.uniform(-5, 5) for _ in range(size)]


def _probs(rng, size):
    raw = [rng.uniform(0.05, 1) for _ in range(size)]
    total = sum(raw)
    return [r / total for r in raw]


def _t(values):
    import torch

    return torch.tensor(values, dtype=torch.float64)


Z, Y, P, Q, W = (d.vector(name) for name in "zypqw")
C_INDEX = d.c


def _cases() -> list:
    import torch
    import torch.nn.functional as F

    eps = d.epsilon
    pw = sp.Symbol("pos_weight", positive=True)

    def ce_ref(v, s, size):
        return F.cross_entropy(_t(v["z"])[None], torch.tensor([s["c"]]), weight=_t(v["w"]),
                               label_smoothing=s["epsilon"], reduction="sum").item()

    def ce_prob_ref(v, s, size):
        return F.cross_entropy(_t(v["z"])[None], _t(v["y"])[None], weight=_t(v["w"]),
                               label_smoothing=s["epsilon"], reduction="sum").item()

    def draw_ce(rng, size):
        return ({"z": _logits(rng, size), "w": [rng.uniform(0.1, 2) for _ in range(size)], "y": _probs(rng, size)},
                {"c": rng.randrange(size), "epsilon": rng.uniform(0, 1)})

    def draw_pq(rng, size):
        return {"p": _probs(rng, size), "q": _probs(rng, size)}, {}

    def draw_z(rng, size):
        return {"z": _logits(rng, size)}, {"c": rng.randrange(size), "k": rng.randrange(size)}

    def draw_binary(rng, size):
        return ({"z": _logits(rng, size), "p": [rng.uniform(0.01, 0.99) for _ in range(size)],
                 "y": [rng.uniform(0, 1) for _ in range(size)], "w": [rng.uniform(0.1, 2) for _ in range(size)],
                 "q": [rng.uniform(0.1, 3) for _ in range(size)]}, {})

    def _with_index(draw):
        def drawn(rng, size):
            values, scalars = draw(rng, size)
            return values, {**scalars, "k": rng.randrange(size)}
        return drawn

    def xlogy_sum(a, b):
        return torch.special.xlogy(_t(a), _t(b)).sum().item()

    return [
        NumericCase("logsumexp", lambda: d.logsumexp(Z),
                    lambda v, s, size: torch.logsumexp(_t(v["z"]), 0).item(), draw_z),
        NumericCase("softmax_k", lambda: d.softmax(Z, d.k),
                    lambda v, s, size: torch.softmax(_t(v["z"]), 0)[s["k"]].item(), draw_z),
        NumericCase("log_softmax_k", lambda: d.log_softmax(Z, d.k),
                    lambda v, s, size: torch.log_softmax(_t(v["z"]), 0)[s["k"]].item(), draw_z),
        NumericCase("self_information_bits", lambda: d.self_information(P[d.k], base=2),
                    lambda v, s, size: -torch.log2(_t(v["p"][s["k"]])).item(), _with_index(draw_pq)),
        NumericCase("binary_entropy", lambda: d.binary_entropy(P[d.k]),
                    lambda v, s, size: -(xlogy_sum([v["p"][s["k"]]], [v["p"][s["k"]]])
                                         + xlogy_sum([1 - v["p"][s["k"]]], [1 - v["p"][s["k"]]])), _with_index(draw_pq)),
        NumericCase("entropy", lambda: d.entropy(P),
                    lambda v, s, size: -xlogy_sum(v["p"], v["p"]), draw_pq),
        NumericCase("entropy_bits", lambda: d.entropy(P, base=2),
                    lambda v, s, size: -xlogy_sum(v["p"], v["p"]) / torch.log(_t(2.0)).item(), draw_pq),
        NumericCase("cross_entropy_base10", lambda: d.cross_entropy(P, Q, base=10),
                    lambda v, s, size: -xlogy_sum(v["p"], v["q"]) / torch.log(_t(10.0)).item(), draw_pq),
        NumericCase("kl_divergence", lambda: d.kl_divergence(P, Q),
                    lambda v, s, size: F.kl_div(_t(v["q"]).log(), _t(v["p"]), reduction="sum").item(), draw_pq),
        NumericCase("nll", lambda: d.nll(Z, C_INDEX, weight=W),
                    lambda v, s, size: F.nll_loss(_t(v["z"])[None], torch.tensor([s["c"]]), weight=_t(v["w"]),
                                                  reduction="sum").item(), draw_ce),
        NumericCase("softmax_cross_entropy", lambda: d.softmax_cross_entropy(Z, C_INDEX, weight=W, label_smoothing=eps),
                    ce_ref, draw_ce),
        NumericCase("softmax_cross_entropy_prob",
                    lambda: d.softmax_cross_entropy_prob(Z, Y, weight=W, label_smoothing=eps), ce_prob_ref, draw_ce),
        NumericCase("multilabel_bce", lambda: d.multilabel_bce(P, Y, weight=W),
                    lambda v, s, size: F.binary_cross_entropy(_t(v["p"]), _t(v["y"]), weight=_t(v["w"]),
                                                              reduction="sum").item(), draw_binary),
        NumericCase("multilabel_bce_with_logits", lambda: d.multilabel_bce_with_logits(Z, Y, pos_weight=Q, weight=W),
                    lambda v, s, size: F.binary_cross_entropy_with_logits(
                        _t(v["z"]), _t(v["y"]), weight=_t(v["w"]), pos_weight=_t(v["q"]), reduction="sum").item(),
                    draw_binary),
        NumericCase("softplus_sigmoid_log_sigmoid",
                    lambda: d.softplus(Z[d.k]) + 2 * d.sigmoid(Z[d.c]) + 3 * d.log_sigmoid(Z[0]),
                    lambda v, s, size: (F.softplus(_t(v["z"][s["k"]])) + 2 * torch.sigmoid(_t(v["z"][s["c"]]))
                                        + 3 * F.logsigmoid(_t(v["z"][0]))).item(), draw_z),
    ]


def _symbol_values(expr, scalars: dict) -> dict:
    by_name = {str(s): s for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    return {by_name[name]: value for name, value in scalars.items() if name in by_name}


def compare(case: NumericCase, size: int, seed: int = 0) -> tuple:
    """Evaluate ``case`` at ``n = size`` against torch; ``(ok, detail)``."""
    rng = random.Random(f"{case.name}-{size}-{seed}")
    expr = case.build()
    values, scalars = case.draw(rng, size)
    vectors = {vec: values[vec.name] for vec in (Z, Y, P, Q, W) if vec.name in values}
    got = evaluate(expr, size, vectors, _symbol_values(expr, scalars))
    want = case.reference(values, scalars, size)
    error = abs(got - want) / max(1.0, abs(want))
    return error <= RTOL, f"n={size}: symbolic {got:.12g}, torch {want:.12g}, rel. error {error:.1e}"


def verify_checks() -> list:
    from .verify import Check

    checks = []
    for case in _cases():
        def run(case=case):
            results = [compare(case, size) for size in SIZES]
            return all(ok for ok, _ in results), "; ".join(detail for _, detail in results)
        checks.append(Check("catalogue vs torch", case.name, run))
    return checks
