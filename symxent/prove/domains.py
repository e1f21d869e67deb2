"""Where the variables of a claim live: domains, the assumptions that state them, and random points.

A :class:`Domain` is an interval for a scalar, or for every element of a vector, and for a vector
possibly ``simplex`` (its elements sum to 1). Domains come from three places, in this order:

1. SymPy's own assumptions on a symbol (``Symbol("eps", positive=True)``, ``vector("p", positive=True)``);
2. the **natural domain** of the catalogue function a name is passed to in a formula: ``entropy(p)``
   makes ``p`` a distribution, ``bce(p, t)`` makes ``p`` and ``t`` lie in [0, 1], ``label_smoothing=eps``
   makes ``eps`` lie in [0, 1], a weight is >= 0, and a name inside ``log`` is > 0;
3. the user's **assumptions** (``--assume "p: distribution"``, ``--assume "0 <= eps <= 1"``, or
   ``Eq(Sum(y[i], (i, 0, n - 1)), 1)``, ``eps < 1``, ``Q.positive(x)`` in the API). A stated domain
   replaces the natural one (that is how a user widens it); SymPy's assumptions always hold.

Every point the prover evaluates, and every counterexample it prints, is drawn from these domains.
"""
from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass, replace
from typing import Optional

import sympy as sp

__all__ = ["Domain", "REAL", "POSITIVE", "NONNEGATIVE", "NEGATIVE", "UNIT", "OPEN_UNIT", "DISTRIBUTION",
           "KINDS", "parse_assumption", "symbol_domain"]


@dataclass(frozen=True)
class Domain:
    """``lower (<|<=) value (<|<=) upper`` (None: unbounded); ``simplex``: a vector summing to 1."""

    lower: Optional[sp.Rational] = None
    lower_strict: bool = False
    upper: Optional[sp.Rational] = None
    upper_strict: bool = False
    simplex: bool = False
    label: str = ""

    def intersect(self, other: "Domain") -> "Domain":
        """Both at once (the tighter bound of each side); an empty result is a ValueError."""
        lower, lower_strict = _tighter(self.lower, self.lower_strict, other.lower, other.lower_strict, max)
        upper, upper_strict = _tighter(self.upper, self.upper_strict, other.upper, other.upper_strict, min)
        if lower is not None and upper is not None and (lower > upper or (lower == upper and
                                                                            (lower_strict or upper_strict))):
            raise ValueError(f"the assumptions leave no value: {self.describe('x')} and {other.describe('x')}")
        labels = [label for label in (self.label, other.label) if label]
        label = " and ".join(dict.fromkeys(labels))
        return Domain(lower, lower_strict, upper, upper_strict, self.simplex or other.simplex, label)

    def contains(self, value) -> bool:
        """Whether one number (a scalar, or one element of a vector) lies in the interval."""
        if self.lower is not None and (value < self.lower or (self.lower_strict and value == self.lower)):
            return False
        if self.upper is not None and (value > self.upper or (self.upper_strict and value == self.upper)):
            return False
        return True

    @property
    def positive(self) -> bool:
        return self.lower is not None and (self.lower > 0 or (self.lower == 0 and self.lower_strict))

    @property
    def nonnegative(self) -> bool:
        return self.lower is not None and self.lower >= 0

    @property
    def negative(self) -> bool:
        return self.upper is not None and (self.upper < 0 or (self.upper == 0 and self.upper_strict))

    def sympy_assumptions(self) -> dict:
        """The SymPy assumptions this domain implies (for a symbol standing for it)."""
        if self.positive:
            return {"positive": True}
        if self.nonnegative:
            return {"nonnegative": True}
        if self.negative:
            return {"negative": True}
        return {"real": True}

    def describe(self, name: str) -> str:
        """``0 <= eps <= 1``, ``p: a distribution (p[i] > 0, sum 1)``, ``x real``."""
        if self.simplex:
            inner = replace(self, simplex=False, label="")
            bound = inner.describe(f"{name}[i]") if inner != Domain() else f"{name}[i] real"
            return f"{name}: sums to 1, {bound}"
        left = "" if self.lower is None else f"{self.lower} {'<' if self.lower_strict else '<='} "
        right = "" if self.upper is None else f" {'<' if self.upper_strict else '<='} {self.upper}"
        return f"{left}{name}{right}" if left or right else f"{name} real"

    # --- drawing -----------------------------------------------------------------------------

    def draw(self, rng: random.Random, kind: str) -> sp.Rational:
        """One exact value: ``moderate`` (two decimals, |v| <= 3 where the domain allows) or ``large``
        (an integer 100 <= |v| <= 1000 of either sign, where the domain allows; else moderate)."""
        low = self.lower if self.lower is not None else sp.Integer(-3)
        high = self.upper if self.upper is not None else max(low + 3, sp.Integer(3))
        if kind in ("large+", "large-", "mixed"):
            sign = 1 if kind == "large+" else -1 if kind == "large-" else rng.choice((1, -1))
            candidate = sp.Integer(sign * rng.randint(100, 1000))
            if self.contains(candidate):
                return candidate
        if self.lower is None and self.upper is not None:
            low = high - 6
        lo = int(sp.ceiling(low * 100)) + (1 if self.lower_strict and (low * 100).is_integer else 0)
        hi = int(sp.floor(high * 100)) - (1 if self.upper_strict and (high * 100).is_integer else 0)
        if lo > hi:  # an interval narrower than 0.01: its midpoint
            return (low + high) / 2
        return sp.Rational(rng.randint(lo, hi), 100)

    def draw_vector(self, rng: random.Random, size: int, kind: str) -> list:
        """``size`` values; a simplex one sums to exactly 1."""
        if not self.simplex:
            return [self.draw(rng, kind) for _ in range(size)]
        if self.nonnegative:  # a random composition of 1 into hundredths (each >= 1/100 when strict)
            least = 1 if self.lower_strict or self.lower > 0 else 0
            total = 100 - least * size
            if total < 0:
                raise ValueError(f"cannot draw {size} values > 0 in hundredths that sum to 1")
            cuts = sorted(rng.randint(0, total) for _ in range(size - 1))
            parts = [b - a + least for a, b in zip([0] + cuts, cuts + [total])]
            return [sp.Rational(p, 100) for p in parts]
        free = [self.draw(rng, "moderate") for _ in range(size - 1)]
        return free + [sp.S.One - sp.Add(*free)]


def _tighter(a, a_strict, b, b_strict, pick):
    if a is None:
        return b, b_strict
    if b is None:
        return a, a_strict
    if a == b:
        return a, a_strict or b_strict
    return (a, a_strict) if pick(a, b) == a else (b, b_strict)


REAL = Domain(label="real")
POSITIVE = Domain(sp.S.Zero, True, label="positive")
NONNEGATIVE = Domain(sp.S.Zero, False, label="nonnegative")
NEGATIVE = Domain(upper=sp.S.Zero, upper_strict=True, label="negative")
UNIT = Domain(sp.S.Zero, False, sp.S.One, False, label="in [0, 1]")
OPEN_UNIT = Domain(sp.S.Zero, True, sp.S.One, True, label="in (0, 1)")
HALF_OPEN_UNIT = Domain(sp.S.Zero, True, sp.S.One, False, label="in (0, 1]")
DISTRIBUTION = Domain(sp.S.Zero, True, sp.S.One, False, simplex=True, label="a distribution")
SUMS_TO_ONE = Domain(simplex=True, label="sums to 1")

#: the words an assumption ``NAME: WORD`` may use
KINDS = {
    "distribution": DISTRIBUTION, "probabilities": DISTRIBUTION, "simplex": DISTRIBUTION,
    "real": REAL, "logits": REAL, "positive": POSITIVE, "nonnegative": NONNEGATIVE, "weights": NONNEGATIVE,
    "negative": NEGATIVE, "probability": UNIT, "unit": UNIT, "label": UNIT, "labels": UNIT,
    "[0, 1]": UNIT, "[0,1]": UNIT, "(0, 1)": OPEN_UNIT, "(0,1)": OPEN_UNIT, "sums to 1": SUMS_TO_ONE,
}


def symbol_domain(symbol) -> Domain:
    """The domain SymPy's assumptions give a Symbol or an IndexedBase (its elements)."""
    probe = symbol[0] if isinstance(symbol, sp.IndexedBase) else symbol
    if probe.is_positive:
        return POSITIVE
    if probe.is_nonnegative:
        return NONNEGATIVE
    if probe.is_negative:
        return NEGATIVE
    return REAL


# --- assumptions a user states ----------------------------------------------------------------

_NAME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$")
_LESS = (ast.Lt, ast.LtE)
_GREATER = (ast.Gt, ast.GtE)


def parse_assumption(text: str) -> dict:
    """``"p: distribution"`` or ``"0 <= eps <= 1"`` / ``"x > 0"`` -> ``{name: Domain}``.

    Words: see :data:`KINDS`. Comparisons: one name and numbers (``1/2``, ``0.25``, ``-3``), chained in
    one direction. Anything else is a ValueError saying what is understood."""
    if not isinstance(text, str):
        raise TypeError(f"an assumption must be a string, got {type(text).__name__}")
    match = _NAME.match(text)
    if match:
        name, word = match.groups()
        domain = KINDS.get(word.lower())
        if domain is None:
            raise ValueError(f"unknown domain {word!r} in the assumption {text!r}: use one of "
                             f"{', '.join(sorted(k for k in KINDS if k[0].isalpha()))}, or a comparison such as "
                             f"'0 <= {name} <= 1'")
        return {name: domain}
    return {_comparison_name(text): _comparison_domain(text)}


def _comparison(text: str):
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"cannot read the assumption {text!r}: write 'NAME: distribution' (or real, positive, "
                         f"nonnegative, weights, probability, ...) or a comparison such as '0 <= eps <= 1'") from None
    if not isinstance(tree, ast.Compare):
        raise ValueError(f"the assumption {text!r} is not a comparison such as 'x > 0' or '0 <= eps <= 1'")
    operands = [tree.left, *tree.comparators]
    names = [o.id for o in operands if isinstance(o, ast.Name)]
    if len(names) != 1:
        raise ValueError(f"the assumption {text!r} must compare one name with numbers")
    if not (all(isinstance(op, _LESS) for op in tree.ops) or all(isinstance(op, _GREATER) for op in tree.ops)):
        raise ValueError(f"the assumption {text!r} mixes < and >: write it as 'a <= x <= b'")
    return tree, operands, names[0]


def _comparison_name(text: str) -> str:
    return _comparison(text)[2]


_NUMBER_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                     ast.Div: lambda a, b: a / b}


def _number(node, text: str) -> sp.Rational:
    """An exact number written with digits, a decimal point, + - * / and brackets (``1/2``, ``-0.25``):
    nothing else is read (no names, no calls)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sp.Rational(ast.get_source_segment(text.strip(), node) or repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _NUMBER_OPERATORS:
        left, right = _number(node.left, text), _number(node.right, text)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError(f"in the assumption {text!r}: division by zero")
        return _NUMBER_OPERATORS[type(node.op)](left, right)
    raise ValueError(f"in the assumption {text!r}: {ast.unparse(node)!r} is not a number (write 1/2, 0.25, -3)")


def _comparison_domain(text: str) -> Domain:
    tree, operands, name = _comparison(text)
    ascending = isinstance(tree.ops[0], _LESS)
    domain = Domain(label=text.strip())
    for left, op, right in zip(operands, tree.ops, operands[1:]):
        strict = isinstance(op, (ast.Lt, ast.Gt))
        small, big = (left, right) if ascending else (right, left)
        if isinstance(small, ast.Name):
            bound = Domain(upper=_number(big, text), upper_strict=strict)
        elif isinstance(big, ast.Name):
            bound = Domain(lower=_number(small, text), lower_strict=strict)
        else:
            continue  # two numbers compared: e.g. the outer pair of a chain
        domain = domain.intersect(replace(bound, label=domain.label))
    return domain
