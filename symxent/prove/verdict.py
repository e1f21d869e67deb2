"""What the prover answers: a :class:`Verdict` with its :class:`Step` s, printable as text, JSON and LaTeX.

Steps keep the expressions the engine computed with; what a person reads (``to_dict``, ``latex``,
the CLI) shows them with readable bound indices (``definitions.binding.readable``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import sympy as sp

from ..definitions.binding import readable

PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN = "proved", "proved_concrete", "refuted", "unknown"
STATUSES = (PROVED, PROVED_CONCRETE, REFUTED, UNKNOWN)


@dataclass(frozen=True)
class Step:
    """One step of a proof: what was done, and the expression it gave.

    ``relation`` links it to the previous step: ``=`` (equal), ``>=`` (a lower bound of it), or
    ``->`` (a new sub-goal: a sign case, a summand that must vanish).
    """

    explanation: str
    expr: sp.Basic
    relation: str = "="

    @property
    def shown(self):
        """The expression with readable bound indices (for printing)."""
        return readable(self.expr)

    def to_dict(self) -> dict:
        shown = self.shown
        return {"explanation": self.explanation, "expr": str(shown), "latex": sp.latex(shown),
                "relation": self.relation}


@dataclass
class Verdict:
    """The answer of :func:`prove`: status, method, time, steps and (if refuted) a counterexample."""

    status: str
    method: str
    seconds: float
    steps: list = field(default_factory=list)
    counterexample: Optional[dict] = None
    lhs: sp.Basic = None
    rhs: sp.Basic = None
    relation: str = "=="
    n: Optional[int] = None
    #: numbers of points at which both sides were evaluated (the cross-examination of every verdict)
    checked_points: int = 0
    #: set when the symbolic steps reached a proof that the numbers contradict: a bug in symxent,
    #: reported with the point (the status is then ``unknown``, never ``proved``)
    internal_error: Optional[dict] = None

    @property
    def proved(self) -> bool:
        return self.status in (PROVED, PROVED_CONCRETE)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "method": self.method,
            "seconds": self.seconds,
            "lhs": str(readable(self.lhs)),
            "rhs": str(readable(self.rhs)),
            "relation": self.relation,
            "n": self.n,
            "steps": [s.to_dict() for s in self.steps],
            "counterexample": self.counterexample,
            "checked_points": self.checked_points,
            "internal_error": self.internal_error,
        }

    def latex(self) -> str:
        r"""The proof as an ``aligned`` chain ``lhs - rhs &= ... \\ &= 0``, each step with its reason."""
        claim = rf"{sp.latex(readable(self.lhs))} {_LATEX_RELATION[self.relation]} {sp.latex(readable(self.rhs))}"
        lines = [rf"&\text{{claim: }} {claim}"]
        for step in self.steps:
            lines.append(rf"&{_LATEX_STEP[step.relation]} {sp.latex(step.shown)} "
                         rf"&& \text{{{_latex_text(step.explanation)}}}")
        verdict = f"{self.status}: {self.method}"
        if self.counterexample:
            point = ", ".join(f"{key} = {value}" for key, value in self.counterexample.items()
                              if key not in ("lhs", "rhs"))
            verdict += f"; at {point}: lhs = {self.counterexample['lhs'][:24]}, rhs = {self.counterexample['rhs'][:24]}"
        lines.append(rf"&\Rightarrow \text{{{_latex_text(verdict)}}}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


_LATEX_RELATION = {"==": "=", ">=": "\\ge", "<=": "\\le"}
_LATEX_STEP = {"=": "=", ">=": "\\ge", "->": "\\to"}


_TEXT_ESCAPES = {"\\": " ", "^": " ", "{": r"\{", "}": r"\}", "_": r"\_", "#": r"\#", "%": r"\%", "&": r"\&",
                 "$": r"\$"}


def _latex_text(text: str) -> str:
    """Plain text made safe inside ``\\text{...}``."""
    return "".join(_TEXT_ESCAPES.get(char, char) for char in text)


class Trace:
    """Collects steps, skipping ones that did not change the expression."""

    def __init__(self):
        self.steps: list = []

    def add(self, explanation: str, expr, relation: str = "=") -> None:
        if relation == "=" and self.steps and self.steps[-1].expr == expr:
            return
        self.steps.append(Step(explanation, expr, relation))


# --- assumptions ------------------------------------------------------------------------------
