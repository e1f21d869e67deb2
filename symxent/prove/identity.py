"""One row of the identity catalogue (:class:`Identity`), and checking it (:func:`check_identity`).

The rows themselves are data in ``identities.py`` (and ``vocab_parallel.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .prover import REFUTED, Verdict, prove


@dataclass(frozen=True)
class Identity:
    """One catalogue row: ``lhs relation rhs`` under ``assumptions``, and the verdict expected."""

    name: str
    lhs: str
    rhs: str
    expected: str
    assumptions: tuple = ()
    n: Optional[int] = None
    description: str = ""
    source: str = ""
    relation: str = "=="
    build: Callable[[], tuple] = field(default=None, repr=False, compare=False)
    #: the row is proved from its formula strings (their natural domains apply: entropy(p) makes p a
    #: distribution); else from ``build`` with ``assumptions``
    formula: bool = False

    def sides(self) -> tuple:
        """The two sides as SymPy expressions."""
        return self.build()

    def claim(self) -> str:
        return f"{self.lhs} {self.relation} {self.rhs}"


@dataclass(frozen=True)
class IdentityResult:
    """An identity with the prover's verdict."""

    identity: Identity
    verdict: Verdict

    @property
    def ok(self) -> bool:
        """The verdict is the one expected (and a refutation carries its counterexample)."""
        if self.verdict.status != self.identity.expected:
            return False
        return self.verdict.status != REFUTED or self.verdict.counterexample is not None

    def to_dict(self) -> dict:
        return {
            "name": self.identity.name,
            "lhs": self.identity.lhs,
            "rhs": self.identity.rhs,
            "relation": self.identity.relation,
            "expected": self.identity.expected,
            "status": self.verdict.status,
            "ok": self.ok,
            "method": self.verdict.method,
            "seconds": round(self.verdict.seconds, 4),
            "counterexample": self.verdict.counterexample,
        }


def check_identity(identity: Identity) -> IdentityResult:
    """Run the prover on one row (``identities.check_identity`` also takes a row's name)."""
    if identity.formula:
        verdict = prove(identity.lhs, identity.rhs, identity.assumptions, identity.n, identity.relation)
    else:
        lhs, rhs = identity.sides()
        verdict = prove(lhs, rhs, identity.assumptions, identity.n, identity.relation)
    return IdentityResult(identity, verdict)
