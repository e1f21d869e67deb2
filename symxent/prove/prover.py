"""Decide ``lhs == rhs`` (or ``lhs >= rhs``, ``lhs <= rhs``) for the cross-entropy family, honestly.

:func:`prove` returns a :class:`~symxent.prove.verdict.Verdict`:

- ``proved``: shown symbolically for every number of classes ``n`` (or, for scalar claims, for every
  value of the symbols), **and** confirmed numerically at >= 20 random points of the domain;
- ``proved_concrete``: the same for the given ``n`` only;
- ``refuted``: a counterexample: a point of the stated domains (distributions sum to 1, labels lie in
  [0, 1], ...) at which both sides, evaluated twice independently at 50 digits, break the relation;
- ``unknown``: neither, with the reason: the steps did not reach a proof, or a limit was hit
  (``limit: time``, ``limit: memory``, an expansion too large). A symbolic proof that the numbers
  contradict is never ``proved``: it is ``unknown`` with ``internal_error`` set (a bug in symxent).

The whole decision runs in a child process under a time limit (default 10 s) and a memory limit
(default 1 GB more than the caller uses), so any input ends in bounded time and memory.

How: ``claim.py`` reads the input and the domains; ``crossexam.py`` evaluates both sides at random
points; ``symbolic.py`` (with ``inequalities.py``) looks for a proof; ``limits.py`` bounds it all.
"""
from __future__ import annotations

import time
from typing import Optional

from . import crossexam
from .claim import RELATIONS, make_claim
from .limits import DEFAULT_MEMORY, DEFAULT_TIMEOUT, LimitExceeded, run_bounded
from .symbolic import decide
from .verdict import PROVED, PROVED_CONCRETE, REFUTED, STATUSES, UNKNOWN, Step, Trace, Verdict

__all__ = ["DEFAULT_MEMORY", "DEFAULT_TIMEOUT", "PROVED", "PROVED_CONCRETE", "REFUTED", "RELATIONS", "STATUSES",
           "UNKNOWN", "Step", "Verdict", "prove"]


def _check_arguments(relation, n, timeout, memory) -> None:
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer (the number of classes) or None, got {n!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 1 << 20:
        raise ValueError(f"memory must be a number of bytes of at least 1 MiB, got {memory!r}")


def prove(lhs, rhs, assumptions=(), n: Optional[int] = None, relation: str = "==", *,
          timeout: Optional[float] = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY, names: Optional[dict] = None,
          seed: int = 0) -> Verdict:
    """Decide ``lhs relation rhs`` and say how.

    ``lhs`` / ``rhs``: formula strings (the safe parser; their functions' natural domains apply, e.g.
    ``entropy(p)``: p a distribution) or SymPy expressions. ``assumptions``: strings such as
    ``"p: distribution"``, ``"0 <= eps <= 1"``, ``"w: weights"``, or ``Eq(Sum(y[i], (i, 0, n - 1)), 1)``,
    ``eps < 1``, ``Q.positive(x)``; a stated domain replaces a natural one. ``n=None``: for every number
    of classes; ``n=3``: for three classes only (``proved_concrete``). ``timeout`` (seconds) and
    ``memory`` (bytes) bound the whole decision; ``timeout=None`` runs it in this process, unbounded.
    """
    start = time.perf_counter()
    _check_arguments(relation, n, timeout, memory)
    arguments = (lhs, rhs, tuple(assumptions) if not isinstance(assumptions, (str,)) else (assumptions,),
                 n, relation, names, seed)
    if timeout is None:
        verdict = _decide(*arguments)
    else:
        try:
            verdict = run_bounded(_decide, arguments, timeout, memory)
        except LimitExceeded as exc:
            return Verdict(UNKNOWN, f"limit: {exc.reason}", time.perf_counter() - start, [], None, lhs, rhs,
                           relation, n)
    verdict.seconds = time.perf_counter() - start
    return verdict


def _decide(lhs, rhs, assumptions, n, relation, names, seed) -> Verdict:
    """The decision itself (in the bounded child): numbers first, then the symbolic steps."""
    claim = make_claim(lhs, rhs, relation, assumptions, n, names)
    trace = Trace()

    def verdict(status, method, counterexample=None, **extra):
        return Verdict(status, method, 0.0, trace.steps, counterexample, claim.lhs, claim.rhs, relation, n,
                       checked_points=examination.points, **extra)

    trace.add("difference of the sides" if relation == "==" else "difference that must be >= 0",
              claim.lhs - claim.rhs if relation != "<=" else claim.rhs - claim.lhs)
    if claim.describe_domains():
        trace.add(claim.describe_domains(), claim.difference, "->")
    examination = crossexam.examine(claim, seed=seed)
    limit = None
    try:
        proved, method = decide(claim, trace)
    except LimitExceeded as exc:
        proved, method, limit = False, "symbolic", exc.reason
        trace.add(f"symbolic steps stopped: {exc.reason}", claim.difference, "->")
    except (MemoryError, RecursionError):  # the process limits: answered as 'unknown (limit: ...)'
        raise
    except Exception as exc:  # a failing SymPy routine proves nothing: record it and go on
        proved, method = False, "symbolic"
        trace.add(f"symbolic steps stopped: {type(exc).__name__}: {exc}", claim.difference, "->")
    if proved:
        if examination.counterexample is not None:
            trace.add("INTERNAL ERROR: the symbolic steps reached a proof, but the sides differ at the point "
                      "below: a bug in symxent (please report it)", claim.difference, "->")
            return verdict(UNKNOWN, "internal error: a symbolic proof contradicted by the numbers at "
                           + _point_text(examination.counterexample),
                           internal_error=examination.counterexample)
        if examination.points < crossexam.MIN_POINTS:
            trace.add(f"only {examination.points} points could be evaluated to cross-examine the proof "
                      f"(at least {crossexam.MIN_POINTS} are required)", claim.difference, "->")
            return verdict(UNKNOWN, f"proved symbolically ({method}), but not cross-examined: only "
                                    f"{examination.points} points had defined values")
        if n is not None:
            return verdict(PROVED_CONCRETE, method)
        return verdict(PROVED, method + (" for every n" if claim.symbolic_n else ""))
    if examination.counterexample is not None:
        trace.add("lhs - rhs at the counterexample (a point of the domain; both sides re-evaluated by SymPy, "
                  f"{crossexam.numeric.DIGITS} digits)", _float(examination.gap), "->")
        return verdict(REFUTED, "numeric counterexample", examination.counterexample)
    if limit is not None:
        return verdict(UNKNOWN, f"limit: {limit}; no counterexample at {examination.points} random points")
    trace.add(f"no counterexample at {examination.points} random points; not proved", claim.difference, "->")
    return verdict(UNKNOWN, "none: symbolic steps did not reach a proof, numeric search found no counterexample")


def _point_text(point: dict) -> str:
    return ", ".join(f"{key} = {value}" for key, value in point.items() if key not in ("lhs", "rhs", "lhs - rhs"))


def _float(value):
    import sympy as sp
    return sp.Float(crossexam.numeric.show(value), crossexam.numeric.DIGITS)


# --- symxent verify -----------------------------------------------------------------------------

#: claims a careless prover gets wrong, with the verdict it must give: a free index named like a
#: catalogue sum's bound index, a refutation that must stay inside the natural domain, a runaway input
SOUNDNESS_CASES = (
    ("diff(logsumexp(z), z[j])", "1", "==", REFUTED, "a free z[j] is not the sum's own element"),
    ("diff(logsumexp(z), z[j])", "softmax(z)[j]", "==", PROVED, "the gradient by a free j is softmax"),
    ("sum(diff(ce(z, c), z[j]), j)", "0", "==", PROVED, "gradient rows sum to 0 (summed over j)"),
    ("entropy(p)", "0", ">=", PROVED, "entropy of a distribution is >= 0 (never refuted off the simplex)"),
    ("(a+b+c+d)**1000", "0", "==", REFUTED, "a power too large to expand, decided within the limit"),
)


def verify_checks() -> list:
    """The prover's soundness checks for ``symxent verify``: the cases above, each within the time limit,
    a refutation's counterexample inside the domain."""
    from ..verify import Check

    def runner(lhs, rhs, relation, expected):
        def run():
            verdict = prove(lhs, rhs, relation=relation)
            ok = verdict.status == expected and verdict.seconds < DEFAULT_TIMEOUT + 5 and not verdict.internal_error
            return ok, f"{verdict.status} (expected {expected}) in {verdict.seconds:.2f} s, " \
                       f"checked at {verdict.checked_points} points"
        return run

    return [Check("prover", f"{lhs} {relation} {rhs}: {why}", runner(lhs, rhs, relation, expected))
            for lhs, rhs, relation, expected, why in SOUNDNESS_CASES]
