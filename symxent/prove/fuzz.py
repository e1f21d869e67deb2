"""A soundness fuzzer for the prover: random claims, each verdict checked by an independent evaluation.

Claims are built from the catalogue's grammar:

- **true by construction**: a pair of formulas known equal (:data:`TRUTHS`, each a proved catalogue
  fact), its metavariables filled at random (vectors ``z``, ``u``, ``v`` or expressions of them such as
  ``z/2``, ``z + a``; class indices from ``i j k l c``, so that coincidences ``k = c`` and names that a
  catalogue sum binds internally both occur; scalars or expressions of them), then wrapped in the same
  context on both sides (``2*(.) + x``, ``exp(.)``) or added to another truth;
- **false by perturbation** of a true one: arguments swapped on one side, a constant changed, an index
  renamed on one side only (creating or removing a coincidence), a term dropped.

The oracle (:func:`oracle_values`) is independent of the prover's numeric code: it writes each side out
with SymPy's binding-aware ``subs`` and ``doit`` at n = 2 and 5, evaluates with ``evalf`` at two
precisions, at points it draws itself from the metavariables' domains. A verdict is **wrong** when

- ``proved`` and the oracle finds the sides different at one of its points;
- ``refuted`` and the claim is true by construction, or the counterexample leaves the domains (a
  distribution not summing to 1, a label outside [0, 1], ...), or the oracle, at the counterexample,
  finds the sides equal.

``unknown`` is counted, never wrong. Run more claims with ``python -m symxent.prove.fuzz --claims 5000``
(or ``SYMXENT_FUZZ_CLAIMS=5000`` for the test).
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import mpmath
import sympy as sp

from ..definitions.symbols import n as N
from .parse import parse_formula
from .prover import PROVED, PROVED_CONCRETE, REFUTED, prove

#: pairs of formulas that are equal (each a proved catalogue fact). Metavariables: Z (logits), P, Q
#: (distributions), X, A (reals), T (a label in [0, 1]), E (a smoothing eps in [0, 1]), K, C, J (class indices)
TRUTHS = (
    ("-log(softmax(Z)[K])", "logsumexp(Z) - Z[K]"),
    ("log_softmax(Z)[K]", "Z[K] - logsumexp(Z)"),
    ("softmax(Z)[K]", "exp(Z[K] - logsumexp(Z))"),
    ("logsumexp(Z + A)", "logsumexp(Z) + A"),
    ("softmax(Z + A)[K]", "softmax(Z)[K]"),
    ("sum(softmax(Z)[J], J)", "1"),
    ("diff(logsumexp(Z), Z[K])", "softmax(Z)[K]"),
    ("diff(ce(Z, C), Z[K])", "softmax(Z)[K] - delta(K, C)"),
    ("sum(diff(ce(Z, C), Z[J]), J)", "0"),
    ("ce(Z, C)", "nll(log_softmax(Z), C)"),
    ("ce(Z, C, label_smoothing=E)", "(1 - E)*ce(Z, C) + E*(logsumexp(Z) - sum(Z[J], J)/n)"),
    ("logsumexp(Z)", "max(Z) + log(sum(exp(Z[J] - max(Z)), J))"),
    ("kl(P, Q)", "cross_entropy(P, Q) - entropy(P)"),
    ("cross_entropy(P, P)", "entropy(P)"),
    ("kl(P, uniform(n))", "log(n) - entropy(P)"),
    ("js(P, Q)", "js(Q, P)"),
    ("entropy(P, 2)", "entropy(P)/log(2)"),
    ("softplus(X) - softplus(-X)", "X"),
    ("sigmoid(-X)", "1 - sigmoid(X)"),
    ("log_sigmoid(X)", "-softplus(-X)"),
    ("bce_with_logits(X, T)", "softplus(X) - T*X"),
    ("bce_with_logits(-X, 1 - T)", "bce_with_logits(X, T)"),
    ("log(exp(X))", "X"),
    ("softmax([A, X])[1]", "sigmoid(X - A)"),
    ("ce([A, X], 0)", "softplus(X - A)"),
)
#: how each metavariable is filled: (kind, choices)
VECTORS = ("z", "u", "v", "(z/2)", "(z + a)", "(2*u - 1)")
DISTRIBUTIONS = ("p", "q", "r")
SCALARS = ("x", "a", "b", "(x + 1)", "(2*a)", "(a - x)")
LABELS = ("t", "s")
INDICES = ("i", "j", "k", "l", "c")
CONTEXTS = ("{}", "2*({}) + x", "exp({})", "({})*(a**2 + 1)", "({}) - b")


@dataclass
class Claim:
    lhs: str
    rhs: str
    true: bool  # true by construction (a perturbed claim is False: false unless the oracle says equal)
    how: str = ""


@dataclass
class Report:
    claims: int = 0
    proved: int = 0
    refuted: int = 0
    unknown: int = 0
    wrong: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.claims} claims: {self.proved} proved, {self.refuted} refuted, {self.unknown} unknown, "
                f"{len(self.wrong)} wrong, in {self.seconds:.1f} s")


# --- building claims ------------------------------------------------------------------------------

def _fill(template: str, rng: random.Random, fixed: Optional[dict] = None, named_only: bool = False) -> tuple:
    """The template with its metavariables replaced; returns (text, choices). ``named_only``: Z is a named
    vector (one can differentiate by its elements and take its max)."""
    choices = dict(fixed or {})
    picks = {"Z": VECTORS[:3] if named_only else VECTORS, "P": DISTRIBUTIONS[:2], "Q": DISTRIBUTIONS[1:], "X": SCALARS, "A": SCALARS[1:3],
             "T": LABELS, "E": ("eps",), "K": INDICES, "C": INDICES, "J": INDICES}
    for meta, options in picks.items():
        if meta in template and meta not in choices:
            choices[meta] = rng.choice(options)
    if "J" in choices and choices["J"] in (choices.get("K"), choices.get("C")):  # J is summed: keep it apart
        choices["J"] = next(i for i in INDICES if i not in (choices.get("K"), choices.get("C")))
    text = template
    for meta, value in choices.items():
        text = text.replace(meta, value)
    return text, choices


def _true_claim(rng: random.Random) -> Claim:
    lhs_t, rhs_t = rng.choice(TRUTHS)
    named = _named_only(lhs_t, rhs_t)
    lhs, choices = _fill(lhs_t, rng, named_only=named)
    rhs, _ = _fill(rhs_t, rng, choices)
    if rng.random() < 0.3:  # a sum of two truths
        l2, r2 = rng.choice(TRUTHS)
        lhs2, c2 = _fill(l2, rng, named_only=_named_only(l2, r2))
        rhs2, _ = _fill(r2, rng, c2)
        lhs, rhs = f"{lhs} + {lhs2}", f"{rhs} + {rhs2}"
    context = rng.choice(CONTEXTS)
    return Claim(context.format(lhs), context.format(rhs), True, "true")


def _named_only(*templates) -> bool:
    return any("diff(" in t or "max(" in t for t in templates)


def _perturb(claim: Claim, rng: random.Random) -> Claim:
    """One change on one side: swapped arguments, a changed constant, a renamed index, a dropped term."""
    lhs, rhs = claim.lhs, claim.rhs
    ways = ["constant", "scale"]
    if any(f"({a}, {b}" in lhs for a in DISTRIBUTIONS for b in DISTRIBUTIONS if a != b):
        ways.append("swap")
    present = [i for i in INDICES if f"[{i}]" in rhs or f", {i})" in rhs]
    if present:
        ways.append("index")
    if len(_top_level_terms(rhs)) > 1:
        ways.append("drop")
    way = rng.choice(ways)
    if way == "constant":
        rhs = f"({rhs}) + {rng.choice(['1', '1/2', 'log(2)'])}"
    elif way == "scale":
        rhs = f"2*({rhs})"
    elif way == "swap":
        for a in DISTRIBUTIONS:
            for b in DISTRIBUTIONS:
                if a != b and f"({a}, {b}" in lhs:
                    lhs = lhs.replace(f"({a}, {b}", f"({b}, {a}", 1)
                    break
            else:
                continue
            break
    elif way == "index":
        old = rng.choice(present)
        new = rng.choice([i for i in INDICES if i != old])
        rhs = rhs.replace(f"[{old}]", f"[{new}]").replace(f", {old})", f", {new})")
    else:
        rhs = " + ".join(_top_level_terms(rhs)[:-1])
    return Claim(lhs, rhs, False, way)


def _top_level_terms(text: str) -> list:
    """``text`` split at the `` + `` outside every bracket."""
    terms, depth, start = [], 0, 0
    for position, char in enumerate(text):
        depth += char in "([" and 1 or char in ")]" and -1 or 0
        if depth == 0 and text.startswith(" + ", position):
            terms.append(text[start:position])
            start = position + 3
    return terms + [text[start:]]


def claims(count: int, seed: int = 0) -> list:
    """``count`` claims, about half true by construction and half perturbed."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        claim = _true_claim(rng)
        out.append(claim if rng.random() < 0.5 else _perturb(claim, rng))
    return out


# --- the oracle -----------------------------------------------------------------------------------

#: the oracle's domains for the names the fuzzer uses
_DISTRIBUTION_NAMES = set(DISTRIBUTIONS)
_LABEL_NAMES = set(LABELS) | {"eps"}


def _draw_point(symbols: set, bases: set, size: int, rng: random.Random) -> dict:
    values = {}
    for base in bases:
        name = str(base.label)
        if name in _DISTRIBUTION_NAMES:
            weights = [rng.randint(1, 9) for _ in range(size)]
            total = sum(weights)
            values.update({base[m]: sp.Rational(w, total) for m, w in enumerate(weights)})
        else:
            values.update({base[m]: sp.Rational(rng.randint(-400, 400), 100) for m in range(size)})
    for symbol in symbols:
        if symbol.name in _LABEL_NAMES:
            values[symbol] = sp.Rational(rng.randint(0, 100), 100)
        else:
            values[symbol] = sp.Rational(rng.randint(-400, 400), 100)
    return values


def _number(expr) -> Optional[mpmath.mpf]:
    """``expr`` at 40 and 80 digits by evalf; None when undefined or when the two disagree."""
    try:
        first, second = sp.N(expr, 40, maxn=1500), sp.N(expr, 80, maxn=1500)
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    if not (first.is_number and first.is_real and second.is_real) or first.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    a, b = mpmath.mpf(str(first)), mpmath.mpf(str(second))
    if abs(a - b) > mpmath.mpf(10) ** -30 * max(1, abs(b)):
        return None
    return b


def _written_out(expr, size: int, indices: dict):
    """``expr`` at n = size with the class indices given: ``subs`` respects what a sum binds."""
    return expr.subs(N, size).doit().subs(indices).doit()


def oracle_values(lhs, rhs, size: int, indices: dict, values: dict) -> tuple:
    """Both sides at one point, by SymPy alone."""
    return tuple(_number(_written_out(side, size, indices).subs(values)) for side in (lhs, rhs))


def _differ(a, b) -> bool:
    return abs(a - b) > mpmath.mpf(10) ** -25 * max(1, abs(a), abs(b))


def _oracle_finds_difference(lhs, rhs, rng: random.Random) -> Optional[dict]:
    """A point (n = 2, 5; indices with and without coincidences) where the sides differ, or None."""
    both = sp.Add(lhs, rhs, evaluate=False)
    bases = {x.base for x in both.atoms(sp.Indexed)}
    labels = {b.label for b in bases}
    bound = {lim[0] for s in both.atoms(sp.Sum) for lim in s.limits}
    free = {s for s in both.atoms(sp.Symbol) if s not in bound and s not in labels and s != N}
    indices = sorted((s for s in free if s.is_integer), key=str)
    scalars = {s for s in free if not s.is_integer}
    for size in (2, 5):
        for pattern in ("same", "random"):
            if pattern == "same":
                value = rng.randrange(size)
                assignment = {s: value for s in indices}
            else:
                assignment = {s: rng.randrange(size) for s in indices}
            values = _draw_point(scalars, bases, size, rng)
            a, b = oracle_values(lhs, rhs, size, assignment, values)
            if a is not None and b is not None and _differ(a, b):
                return {"n": size, **{str(k): v for k, v in assignment.items()}}
    return None


def _counterexample_point(cex: dict, lhs, rhs) -> Optional[tuple]:
    """The counterexample's (size, indices, values) as SymPy numbers, checked against the fuzzer's own
    domains; None when it leaves them."""
    both = sp.Add(lhs, rhs, evaluate=False)
    size = int(cex["n"]) if "n" in cex else None
    bound = {lim[0] for s in both.atoms(sp.Sum) for lim in s.limits}
    symbols = {s.name: s for s in both.atoms(sp.Symbol) if s not in bound}
    bases = {str(x.base.label): x.base for x in both.atoms(sp.Indexed)}
    indices, values, vectors = {}, {}, {}
    for key, text in cex.items():
        if key in ("n", "lhs", "rhs", "lhs - rhs"):
            continue
        value = sp.Rational(text)
        if "[" in key:
            name, position = key[:-1].split("[")
            values[bases[name][int(position)]] = value
            vectors.setdefault(name, []).append(value)
        elif key in symbols and symbols[key].is_integer:
            indices[symbols[key]] = int(value)
        elif key in symbols:
            values[symbols[key]] = value
            if key in _LABEL_NAMES and not 0 <= value <= 1:
                return None
    for name, elements in vectors.items():
        if name in _DISTRIBUTION_NAMES and (sum(elements) != 1 or min(elements) <= 0):
            return None
    return size, indices, values


def check(claim: Claim, seed: int) -> tuple:
    """(status, wrong reason or None) for one claim."""
    rng = random.Random(seed)
    verdict = prove(claim.lhs, claim.rhs, timeout=20, seed=seed)
    lhs, rhs = parse_formula(claim.lhs), parse_formula(claim.rhs)
    if verdict.internal_error:
        return "unknown", f"internal error reported at {verdict.internal_error}"
    if verdict.status in (PROVED, PROVED_CONCRETE):
        difference = _oracle_finds_difference(lhs, rhs, rng)
        return verdict.status, (f"proved, but the sides differ at {difference}" if difference else None)
    if verdict.status == REFUTED:
        if claim.true:
            return verdict.status, "refuted a claim that is true by construction"
        point = _counterexample_point(verdict.counterexample, lhs, rhs)
        if point is None:
            return verdict.status, f"counterexample outside the domains: {verdict.counterexample}"
        size, indices, values = point
        a, b = oracle_values(lhs, rhs, size or 2, indices, values)
        if a is None or b is None or not _differ(a, b):
            return verdict.status, f"the oracle finds the sides equal at the counterexample {verdict.counterexample}"
        return verdict.status, None
    return verdict.status, None


def _check_one(job):
    claim, seed = job
    try:
        return claim, check(claim, seed)
    except Exception as exc:  # a crash is a finding too
        return claim, ("unknown", f"{type(exc).__name__}: {exc}")


def run(count: int = 500, seed: int = 0, workers: int = 2) -> Report:
    """Check ``count`` claims (``workers`` processes); the report lists every wrong verdict."""
    start = time.perf_counter()
    jobs = [(claim, seed * 100_003 + number) for number, claim in enumerate(claims(count, seed))]
    report = Report(claims=count)
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_check_one, jobs, chunksize=8)
    else:
        results = [_check_one(job) for job in jobs]
    for claim, (status, wrong) in results:
        if status in (PROVED, PROVED_CONCRETE):
            report.proved += 1
        elif status == REFUTED:
            report.refuted += 1
        else:
            report.unknown += 1
        if wrong:
            report.wrong.append((claim.lhs, claim.rhs, claim.how, wrong))
    report.seconds = time.perf_counter() - start
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="symxent's prover soundness fuzzer")
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    report = run(args.claims, args.seed, args.workers)
    for lhs, rhs, how, why in report.wrong:
        print(f"WRONG ({how}): {lhs}  vs  {rhs}: {why}")
    print(report.summary())
    return 1 if report.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
