"""Safe formula input: a user's formula string to SymPy, without ``eval``.

The text is parsed with ``ast.parse(text, mode="eval")`` (which only builds a syntax tree) and
walked by a whitelisting visitor that builds SymPy objects directly. Nothing is evaluated as
Python, and ``sympify``/``parse_expr`` never see the text.

Grammar (a subset of Python's expression syntax):

- numbers: integers and decimals, exact (``0.1`` is 1/10, ``1e-3`` is 1/1000); no complex
  numbers, strings, booleans or ``None``;
- ``+ - * / **`` and unary ``+ -``. ``^`` is rejected rather than read as a power: Python's
  ``^`` binds looser than ``+``, so ``a + b^2`` would silently parse as ``(a + b)^2``;
- one comparison at the top level, ``lhs == rhs`` (also ``!= < <= > >=``): an unevaluated relation;
- calls of the functions in :data:`ALLOWED_FUNCTIONS` with positional arguments and the
  keywords named in :data:`FUNCTIONS` (``base=``, ``k=``, ``weight=``, ``label_smoothing=``, ...);
- indexing a vector with one class index: ``z[c]``, ``softmax(z)[k]``;
- vector literals ``[0.7, 0.2, 0.1]``;
- ``sum(v)`` sums a vector; ``sum(body, i)`` sums ``body`` over the class index ``i = 0..n-1``;
- ``diff(f, v)`` is the unevaluated derivative ``Derivative(f, v)`` (``.doit()`` evaluates it).

Names:

- ``n``: the number of classes (the ``n`` argument if it is an int, else the catalogue's symbol);
- ``i j k l c``: the catalogue's class indices (integer symbols); they are never vectors;
- ``e``/``E`` is Euler's number, ``pi`` is pi;
- any other identifier is a *vector* if it is indexed (``z[c]``) or passed where a vector is
  expected (``softmax(z)``, ``entropy(p)``, ``weight=w``, ``sum(v)``), and otherwise a real
  scalar symbol (``x``, ``t``, ``eps``, ``gamma``, ...). One name used both ways is an error.
  A vector is ``vector(name)`` (length ``n``) for a symbolic ``n``, else the tuple of real
  symbols ``(name0, ..., name{n-1})``;
- ``names`` maps identifiers to values (numbers, SymPy expressions, vectors) and overrides these rules.

Everything else (attribute access, names starting with ``_``, Python builtins, lambdas,
comprehensions, f-strings, assignments, ``*``/``**`` unpacking, slices, tuples, dicts, sets,
calls of anything not whitelisted) raises :class:`FormulaError` with the column where it is.
Resource limits: at most :data:`MAX_LENGTH` characters, brackets nested at most
:data:`MAX_BRACKETS` deep, a syntax tree at most :data:`MAX_DEPTH` deep, exponents at most
:data:`MAX_EXPONENT` in size, exact numbers of at most :data:`MAX_NUMBER_BITS` bits, and :data:`MAX_NODES` visited nodes once ``sum(body, i)`` is unrolled.
"""
from __future__ import annotations

import ast
import builtins
import difflib
import operator
import re
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from numbers import Number
from typing import Callable

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..definitions import (bce, bce_with_logits, binary_entropy, cross_entropy, entropy, jensen_shannon, kl_divergence,
                           log_sigmoid, log_softmax, logsumexp, max_element, min_element, multilabel_bce,
                           multilabel_bce_with_logits, nll, self_information, sigmoid, softmax,
                           softmax_cross_entropy, softmax_cross_entropy_prob, softplus, stable_softplus, uniform,
                           xlogy)
from . import domains
from ..definitions.binding import bound_index
from ..definitions.symbols import MappedVector, SymbolicVector, as_vector, c, class_sum, common_length, i, j, k, l, length
from ..definitions.symbols import n as n_symbol
from ..definitions.symbols import vector

__all__ = ["ALLOWED_FUNCTIONS", "FUNCTIONS", "FormulaError", "parse_formula", "verify_checks"]

#: the longest formula accepted, in characters
MAX_LENGTH = 2000
#: the deepest bracket nesting accepted
MAX_BRACKETS = 100
#: the deepest syntax tree accepted (a chain ``a + b + ...`` of m terms is m deep)
MAX_DEPTH = 200
#: the largest rational exponent accepted (``x**1000`` is fine, ``9**9**9`` is not)
MAX_EXPONENT = 1000
#: the largest exact number (in bits, about 3000 digits) an operation on numbers may produce
MAX_NUMBER_BITS = 10_000
#: the most syntax-tree nodes visited, counting each unrolled term of ``sum(body, i)``
MAX_NODES = 100_000
#: the largest concrete number of classes
MAX_CLASSES = 1000


class FormulaError(ValueError):
    """A formula that is malformed or not allowed.

    ``column`` and ``line`` are 1-based (None when unknown), counted in the formula with its
    surrounding whitespace removed.
    """

    def __init__(self, message: str, column: int | None = None, line: int | None = None):
        self.reason, self.column, self.line = message, column, line
        if column is None:
            where = ""
        elif line in (None, 1):
            where = f" (column {column})"
        else:
            where = f" (line {line}, column {column})"
        super().__init__(message + where)

    def __reduce__(self):  # pickled across the prover's child process with its position
        return type(self), (self.reason, self.column, self.line)


# --- the function table: one row per allowed name ------------------------------------------

VECTOR, SCALAR, INDEX = "vector", "scalar", "index"


#: the natural domains a parameter spec may name (``"p[]:distribution"``)
_DOMAIN_WORDS = {"distribution": domains.DISTRIBUTION, "unit": domains.UNIT, "open_unit": domains.OPEN_UNIT,
                 "half_open_unit": domains.HALF_OPEN_UNIT, "nonnegative": domains.NONNEGATIVE,
                 "positive": domains.POSITIVE}


@dataclass(frozen=True)
class Param:
    """One argument: its keyword name, its kind (vector, scalar or class index), whether optional, and
    the natural domain of what is passed (None: any real)."""

    name: str
    kind: str = SCALAR
    optional: bool = False
    domain: object = None

    @classmethod
    def parse(cls, spec: str) -> "Param":
        """``"z[]"``: a vector; ``"c#"``: a class index; ``"base?"``: optional; else a scalar;
        ``":distribution"`` (``unit``, ``open_unit``, ``nonnegative``, ...) after it: its natural domain."""
        spec, _, word = spec.partition(":")
        domain = _DOMAIN_WORDS[word] if word else None
        optional = spec.endswith("?")
        spec = spec.rstrip("?")
        if spec.endswith("[]"):
            return cls(spec[:-2], VECTOR, optional, domain)
        if spec.endswith("#"):
            return cls(spec[:-1], INDEX, optional, domain)
        return cls(spec, SCALAR, optional, domain)

    def usage(self) -> str:
        text = f"{self.name}[]" if self.kind == VECTOR else self.name
        return f"{text}=..." if self.optional else text


@dataclass(frozen=True)
class FunctionSpec:
    """How to call ``build``: required arguments positionally, optional ones by keyword.

    ``variadic``: any number (at least one) of scalar arguments, as for ``Max``; ``elementwise``: a
    one-argument function that maps a vector element by element (``exp(z)``).
    """

    build: Callable
    params: tuple = ()
    variadic: bool = False
    elementwise: bool = False

    def usage(self, name: str) -> str:
        inner = "x, y, ..." if self.variadic else ", ".join(p.usage() for p in self.params)
        return f"{name}({inner})"


def _fn(build: Callable, *params: str, variadic: bool = False, elementwise: bool = False) -> FunctionSpec:
    return FunctionSpec(build, tuple(Param.parse(p) for p in params), variadic, elementwise)


def _entropy_or_cross_entropy(p, q=None, base=None):
    """``H(p)``: entropy; ``H(p, q)``: cross-entropy (Cover & Thomas' notation)."""
    if q is None:
        return entropy(p) if base is None else entropy(p, base)
    return cross_entropy(p, q) if base is None else cross_entropy(p, q, base)


def _log(x, base=None):
    """``log(x)``, or ``log(x) / log(base)``."""
    return sp.log(x) if base is None else sp.log(x, base)


def _sum_elements(v):
    """``sum(v) = v_0 + ... + v_{n-1}``."""
    return class_sum(lambda m: v[m], v)


def _derivative(f, v):
    """The unevaluated ``Derivative(f, v)``; ``v`` a symbol or a vector element ``z[k]``."""
    if not isinstance(v, (sp.Symbol, sp.Indexed)):
        raise ValueError(f"differentiate with respect to a symbol or a vector element such as z[k], not {_show(v)}")
    return sp.Derivative(f, v)


#: every function a formula may call: name -> how to build it. Notation of the argument specs:
#: ``z[]`` a vector, ``c#`` a class index, ``base?`` optional (by position or keyword), else a scalar.
FUNCTIONS: dict = {
    # the catalogue (after ':' the natural domain of what is passed: the prover samples from there)
    "logsumexp": _fn(logsumexp, "z[]"),
    "softmax": _fn(softmax, "z[]", "k#?"),
    "log_softmax": _fn(log_softmax, "z[]", "k#?"),
    "sigmoid": _fn(sigmoid, "x", elementwise=True),
    "softplus": _fn(softplus, "x", elementwise=True),
    "log_sigmoid": _fn(log_sigmoid, "x", elementwise=True),
    "stable_softplus": _fn(stable_softplus, "x", elementwise=True),
    "self_information": _fn(self_information, "p:half_open_unit", "base?"),
    "binary_entropy": _fn(binary_entropy, "p:open_unit", "base?"),
    "entropy": _fn(entropy, "p[]:distribution", "base?"),
    "cross_entropy": _fn(cross_entropy, "p[]:distribution", "q[]:distribution", "base?"),
    "H": _fn(_entropy_or_cross_entropy, "p[]:distribution", "q[]?:distribution", "base?"),
    "kl_divergence": _fn(kl_divergence, "p[]:distribution", "q[]:distribution", "base?"),
    "kl": _fn(kl_divergence, "p[]:distribution", "q[]:distribution", "base?"),
    "KL": _fn(kl_divergence, "p[]:distribution", "q[]:distribution", "base?"),
    "jensen_shannon": _fn(jensen_shannon, "p[]:distribution", "q[]:distribution", "base?"),
    "js": _fn(jensen_shannon, "p[]:distribution", "q[]:distribution", "base?"),
    "uniform": _fn(uniform, "size"),
    "xlogy": _fn(xlogy, "weight", "value", "base?"),
    "nll": _fn(nll, "logp[]", "c#", "weight[]?:nonnegative"),
    "softmax_cross_entropy": _fn(softmax_cross_entropy, "z[]", "c#", "weight[]?:nonnegative", "label_smoothing?:unit"),
    "ce": _fn(softmax_cross_entropy, "z[]", "c#", "weight[]?:nonnegative", "label_smoothing?:unit"),
    "softmax_cross_entropy_prob": _fn(softmax_cross_entropy_prob, "z[]", "y[]:distribution", "weight[]?:nonnegative",
                                      "label_smoothing?:unit"),
    "bce": _fn(bce, "p:unit", "t:unit", "weight?:nonnegative"),
    "bce_with_logits": _fn(bce_with_logits, "x", "t:unit", "pos_weight?:nonnegative", "weight?:nonnegative"),
    "multilabel_bce": _fn(multilabel_bce, "p[]:unit", "t[]:unit", "weight[]?:nonnegative"),
    "multilabel_bce_with_logits": _fn(multilabel_bce_with_logits, "x[]", "t[]:unit", "pos_weight[]?:nonnegative",
                                      "weight[]?:nonnegative"),
    # elementary functions (applied to a vector: element by element)
    "log": _fn(_log, "x", "base?", elementwise=True),
    "ln": _fn(_log, "x", elementwise=True),
    "exp": _fn(sp.exp, "x", elementwise=True),
    "sqrt": _fn(sp.sqrt, "x", elementwise=True),
    "tanh": _fn(sp.tanh, "x", elementwise=True),
    "log1p": _fn(log1p, "x", elementwise=True),
    "expm1": _fn(expm1, "x", elementwise=True),
    "Abs": _fn(sp.Abs, "x", elementwise=True),
    "abs": _fn(sp.Abs, "x", elementwise=True),
    # max(x, y, ...) of numbers; max(z) of one vector: its largest element
    "Max": _fn(sp.Max, variadic=True),
    "max": _fn(sp.Max, variadic=True),
    "Min": _fn(sp.Min, variadic=True),
    "min": _fn(sp.Min, variadic=True),
    "KroneckerDelta": _fn(sp.KroneckerDelta, "i", "j"),
    "delta": _fn(sp.KroneckerDelta, "i", "j"),
    # sum(v) sums a vector; the two-argument form sum(body, i) is a binding form (see _Builder)
    "sum": _fn(_sum_elements, "v[]"),
    "Sum": _fn(_sum_elements, "v[]"),
    "diff": _fn(_derivative, "f", "v"),
}

#: the names a formula may call
ALLOWED_FUNCTIONS: tuple = tuple(sorted(FUNCTIONS))

_SUM_FORMS = ("sum", "Sum")
_CONSTANTS = {"e": sp.E, "E": sp.E, "pi": sp.pi}
_INDICES = {"i": i, "j": j, "k": k, "l": l, "c": c}
#: Python builtins are not usable as symbol names (``exec``, ``open``, ``eval`` ... are errors, not symbols)
_BUILTIN_NAMES = frozenset(dir(builtins))

_BINARY_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_ELEMENT_OPERATORS = {**_BINARY_OPERATORS, ast.Div: operator.truediv, ast.Pow: operator.pow}
_RELATIONS = {ast.Eq: sp.Eq, ast.NotEq: sp.Ne, ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
_OPERATOR_SYMBOLS = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
                     ast.BitOr: "|", ast.BitAnd: "&", ast.Invert: "~", ast.Not: "not"}
#: what the user is told for syntax that is rejected
_REJECTED = {
    ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "assignment (:=)", ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string",
    ast.Starred: "unpacking (*)", ast.Dict: "a dict", ast.Set: "a set",
    ast.Tuple: "a tuple (write a vector as [a, b, c])", ast.IfExp: "a conditional expression",
    ast.BoolOp: "and/or", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
    ast.Slice: "a slice", ast.Compare: "a comparison inside a formula (only lhs == rhs at the top level)",
}


def _is_vector(value) -> bool:
    return isinstance(value, (tuple, SymbolicVector, MappedVector))


def _show(value, limit: int = 60) -> str:
    """``value`` for an error message, shortened (and safe for integers too long for ``str``)."""
    try:
        text = sp.sstr(value)
    except ValueError:
        return "a very large number"
    return text if len(text) <= limit else text[:limit] + "..."


def _bits(number: sp.Rational) -> int:
    return number.p.bit_length() + number.q.bit_length()


def _exact_decimal(literal: str) -> sp.Rational:
    """The exact value of a decimal literal such as ``0.1``, ``1e-3`` or ``1_000.5``."""
    try:
        value = Decimal(literal)
    except InvalidOperation:
        raise FormulaError(f"not a number: {literal!r}") from None
    if not value.is_finite() or abs(value.adjusted()) > MAX_EXPONENT:
        raise FormulaError(f"the number {literal} is out of range (decimal exponent at most {MAX_EXPONENT})")
    return sp.Rational(*value.as_integer_ratio())


def _name_value(name: str, value):
    """A value given in ``names``: a vector, a SymPy expression or a Python number (exactly)."""
    if isinstance(value, (tuple, list, SymbolicVector, MappedVector, sp.IndexedBase)):
        return as_vector(value, name)
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise TypeError(f"names[{name!r}]: expected a number, a SymPy expression or a vector, got {value!r}")
    if isinstance(value, float):
        return _exact_decimal(repr(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, Number):
        return sp.Integer(int(value))
    return as_vector(value, name)  # e.g. a NumPy array; raises TypeError for anything else


# --- the visitor -----------------------------------------------------------------------------

class _Builder:
    """Walks a syntax tree and builds the SymPy expression; rejects every node it has no rule for."""

    def __init__(self, text: str, n, names: dict, indexed_vectors: bool = False):
        self.text = text
        self.text_lines = re.split(r"\r\n|\r|\n", text)
        self.n = n  # an int, or the catalogue's symbol
        self.names = names
        self.indexed_vectors = indexed_vectors  # with a concrete n: z is z[0..n-1], not symbols z0, z1, ...
        self.kinds: dict = {}  # free name -> VECTOR / SCALAR, fixed by its first use
        self.bound: dict = {}  # summation indices of the enclosing sum(body, i) forms
        self.natural: dict = {}  # free name -> Domain: where the functions it is passed to are defined
        self.conditions: list = []  # (expression, Domain): an argument that is an expression, e.g. eps/2
        self.evidence: set = set()  # names that are vectors whatever the context (indexed, sum(v), ...)
        self.visited = 0

    # errors with positions

    def error(self, message: str, node=None) -> FormulaError:
        if node is None or not hasattr(node, "col_offset"):
            return FormulaError(message)
        line = self.text_lines[node.lineno - 1] if node.lineno <= len(self.text_lines) else ""
        column = len(line.encode("utf-8")[: node.col_offset].decode("utf-8", "replace")) + 1
        return FormulaError(message, column, node.lineno)

    # dispatch

    def formula(self, tree: ast.Expression):
        self.evidence = _vector_evidence(tree)
        body = tree.body
        if isinstance(body, ast.Compare):
            return self.relation(body)
        return self.scalar(body, "the formula")

    def visit(self, node, expect=SCALAR):
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.error(f"the formula is too large once its sums are expanded (more than {MAX_NODES} nodes)")
        method = self._VISITORS.get(type(node))
        if method is None:
            raise self.error(f"{self.describe(node)} is not allowed", node)
        return method(self, node, expect)

    @staticmethod
    def describe(node) -> str:
        if type(node) in _REJECTED:
            return _REJECTED[type(node)]
        return f"the syntax {type(node).__name__}"

    def scalar(self, node, what: str):
        value = self.visit(node, SCALAR)
        if _is_vector(value) and isinstance(node, ast.Name) and self.kinds.get(node.id) == VECTOR:
            raise self.error(f"{node.id!r} is used both as a vector and as a scalar: it is a vector here "
                             f"(indexed, summed or passed as one elsewhere), but {what} must be a number", node)
        if _is_vector(value):
            raise self.error(
                f"{what} is a vector, where a number is expected: index it (e.g. softmax(z)[k]) "
                f"or reduce it (e.g. sum(p))", node)
        return value

    # leaves

    def constant(self, node: ast.Constant, expect):
        value = node.value
        if isinstance(value, bool):
            raise self.error("booleans are not allowed", node)
        if isinstance(value, int):
            return sp.Integer(value)
        if isinstance(value, float):
            literal = ast.get_source_segment(self.text, node) or repr(value)
            try:
                return _exact_decimal(literal)
            except FormulaError as exc:
                raise self.error(exc.reason, node) from None
        if isinstance(value, (str, bytes)):
            raise self.error("strings are not allowed", node)
        if isinstance(value, complex):
            raise self.error("complex literals are not allowed (use sqrt(-1) if you must)", node)
        raise self.error(f"{value!r} is not allowed", node)

    def identifier(self, name: str, node) -> str:
        if name.startswith("__") and name.endswith("__"):
            raise self.error(f"dunder names are not allowed: {name!r}", node)
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed: {name!r}", node)
        return name

    def name(self, node: ast.Name, expect):
        name = self.identifier(node.id, node)
        if name in self.bound:
            return self.bound[name]
        if name in self.names:
            return self.names[name]
        if name in FUNCTIONS:
            raise self.error(f"{name!r} is a function: call it, e.g. {FUNCTIONS[name].usage(name)}", node)
        if name in _BUILTIN_NAMES:
            raise self.error(f"{name!r} is a Python builtin, not allowed in a formula", node)
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name == "n":
            return self.n
        if name in _INDICES:
            return _INDICES[name]
        return self.free_name(name, expect, node)

    def free_name(self, name: str, expect, node):
        """A name with no fixed meaning: a vector where one is expected (or where it is indexed or
        summed anywhere in the formula), else a real scalar."""
        kind = VECTOR if expect == VECTOR or name in self.evidence else SCALAR
        previous = self.kinds.setdefault(name, kind)
        if previous != kind:
            raise self.error(f"{name!r} is used both as a vector and as a scalar", node)
        if kind == SCALAR:
            return sp.Symbol(name, real=True)
        if isinstance(self.n, int):
            if self.indexed_vectors:
                return SymbolicVector(sp.IndexedBase(name, real=True), self.n)
            return tuple(sp.Symbol(f"{name}{m}", real=True) for m in range(self.n))
        return vector(name, self.n)

    def note_domain(self, node, domain, kind, value=None) -> None:
        """Record the natural domain of a free name passed where ``domain`` is natural (a condition on
        the value, for an expression such as ``eps/2``); for a vector literal, of its elements (each
        element of a distribution lies in [0, 1])."""
        if domain is None:
            return
        if isinstance(node, ast.Name) and self.kinds.get(node.id) is not None and node.id not in self.bound \
                and node.id not in self.names:
            known = self.natural.get(node.id)
            self.natural[node.id] = domain if known is None else known.intersect(domain)
        elif isinstance(node, ast.List) and kind == VECTOR:
            element = domains.UNIT if domain.simplex else domain
            for item, item_value in zip(node.elts, value if isinstance(value, tuple) else [None] * len(node.elts)):
                self.note_domain(item, element, SCALAR, item_value)
        elif kind == SCALAR and isinstance(value, sp.Expr) and not value.is_number:
            self.conditions.append((value, domain))

    def vector_literal(self, node: ast.List, expect):
        if not node.elts:
            raise self.error("a vector needs at least one element", node)
        return tuple(self.scalar(element, "a vector element") for element in node.elts)

    # operators

    def unary(self, node: ast.UnaryOp, expect):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise self.error(f"the operator {_OPERATOR_SYMBOLS[type(node.op)]!r} is not allowed", node)
        value = self.visit(node.operand, expect)
        if isinstance(node.op, ast.UAdd):
            return value
        return self.elementwise(operator.neg, value, None, node) if _is_vector(value) else -value

    #: in a place that expects a vector, which operand of ``a op b`` a name of unknown kind stands for:
    #: z / T, z + a, z - m, z ** 2 (the left one is the vector); a * z (the right one)
    _VECTOR_OPERAND = {ast.Div: (VECTOR, SCALAR), ast.Add: (VECTOR, SCALAR), ast.Sub: (VECTOR, SCALAR),
                       ast.Pow: (VECTOR, SCALAR), ast.Mult: (SCALAR, VECTOR)}

    def binary(self, node: ast.BinOp, expect):
        op = type(node.op)
        if op is ast.BitXor:
            raise self.error("'^' is not a power here: write x**2 ('^' would bind looser than '+')", node)
        if op not in _BINARY_OPERATORS and op not in (ast.Div, ast.Pow):
            raise self.error(f"the operator {_OPERATOR_SYMBOLS.get(op, op.__name__)!r} is not allowed", node)
        left_kind, right_kind = self._VECTOR_OPERAND[op] if expect == VECTOR else (SCALAR, SCALAR)
        left, right = self.visit(node.left, left_kind), self.visit(node.right, right_kind)
        if _is_vector(left) or _is_vector(right):  # element by element; a scalar operand is broadcast
            if op is ast.Pow and not _is_vector(right):
                self.power(sp.Symbol("x"), right, node)  # the same limits on the exponent
            if op is ast.Div and not _is_vector(right) and right.is_zero:
                raise self.error("division by zero", node)
            return self.elementwise(_ELEMENT_OPERATORS[op], left, right, node)
        return self.scalar_operation(op, left, right, node)

    def scalar_operation(self, op, left, right, node):
        if op is ast.Div:
            if right.is_zero:
                raise self.error("division by zero", node)
            result = left / right
        elif op is ast.Pow:
            result = self.power(left, right, node)
        else:
            result = _BINARY_OPERATORS[op](left, right)
        if result.is_Rational and _bits(result) > MAX_NUMBER_BITS:
            raise self.error(f"the result is too large a number (more than {MAX_NUMBER_BITS} bits)", node)
        return result

    def elementwise(self, function, left, right, node):
        """``function(left[m], right[m])`` (or of one vector when ``right`` is None) for every class m."""
        vectors = [v for v in (left, right) if _is_vector(v)]
        try:
            size = common_length(*vectors)
        except ValueError as exc:
            raise self.error(str(exc), node) from None

        def pick(value, m):
            return value[m] if _is_vector(value) else value

        if right is None:
            mapped = MappedVector(lambda m: function(pick(left, m)), size)
        else:
            mapped = MappedVector(lambda m: function(pick(left, m), pick(right, m)), size)
        return tuple(mapped[m] for m in range(size)) if isinstance(size, int) else mapped

    def power(self, base, exponent, node):
        """``base**exponent``, refusing exponents and exact numbers too big to compute quickly."""
        if exponent.is_Rational:
            if abs(exponent) > MAX_EXPONENT:
                raise self.error(f"the exponent {_show(exponent)} is too large (at most {MAX_EXPONENT} in size)", node)
            if base.is_zero and exponent.is_negative:
                raise self.error("division by zero (0 to a negative power)", node)
            if base.is_Rational and abs(exponent) * _bits(base) > MAX_NUMBER_BITS:
                raise self.error(f"the power is too large a number (more than {MAX_NUMBER_BITS} bits)", node)
        return base ** exponent

    def relation(self, node: ast.Compare):
        if len(node.ops) != 1:
            raise self.error("chained comparisons are not allowed: write one lhs == rhs", node)
        relation = _RELATIONS.get(type(node.ops[0]))
        if relation is None:
            raise self.error(f"the comparison {type(node.ops[0]).__name__} is not allowed", node)
        lhs = self.scalar(node.left, "the left-hand side")
        rhs = self.scalar(node.comparators[0], "the right-hand side")
        return relation(lhs, rhs, evaluate=False)

    # indexing

    def subscript(self, node: ast.Subscript, expect):
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):
            raise self.error("index a vector with one class index, e.g. z[c] (slices are not allowed)", node.slice)
        value = self.visit(node.value, VECTOR)
        if not _is_vector(value):
            what = repr(node.value.id) if isinstance(node.value, ast.Name) else "this expression"
            raise self.error(f"{what} is a scalar, not a vector: it cannot be indexed", node)
        index = self.class_index(node.slice, length(value), "the index")
        return value[int(index)] if isinstance(value, tuple) else value[index]

    def class_index(self, node, size, what: str):
        """A class index: a number in 0..size-1, or an integer expression when ``size`` is symbolic."""
        index = self.scalar(node, what)
        if index.is_number:
            if not index.is_Integer or index.is_negative:
                raise self.error(f"{what} must be a nonnegative integer, got {_show(index)}", node)
            if isinstance(size, int) and index >= size:
                raise self.error(f"{what} {_show(index)} is out of range for {size} classes (0..{size - 1})", node)
        elif isinstance(size, int):
            raise self.error(
                f"with {size} classes {what} must be a number 0..{size - 1}, got {_show(index)}: "
                f"give its value in names, or sum over it with sum(body, {_show(index)})", node)
        elif index.is_integer is not True:
            raise self.error(f"{what} {_show(index)} is not an integer: use i, j, k, l, c or an integer expression", node)
        return index

    # calls

    def call(self, node: ast.Call, expect):
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.error("attribute access is not allowed", func)
        if not isinstance(func, ast.Name):
            raise self.error("only the allowed functions can be called, by name", func)
        name = self.identifier(func.id, func)
        if name in _SUM_FORMS and len(node.args) == 2 and not node.keywords:
            return self.indexed_sum(node)
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise self.error(self.unknown_function(name), func)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("unpacking (*) is not allowed", arg)
        if spec.variadic:
            if node.keywords:
                raise self.error(f"{name}() takes no keyword arguments", node.keywords[0])
            if not node.args:
                raise self.error(f"{name}() needs at least one argument", node)
            if len(node.args) == 1:  # max(z): the largest element of a vector
                return self.extreme(name, node)
            return self.build(name, spec, node, [self.scalar(a, f"an argument of {name}()") for a in node.args], {})
        return self.call_with_params(name, spec, node, expect)

    def extreme(self, name: str, node: ast.Call):
        value = self.visit(node.args[0], VECTOR)
        if not _is_vector(value):
            raise self.error(f"{name}() of one number: give two or more numbers, or a vector (max(z) is its "
                             f"largest element)", node)
        pick = max_element if name.lower() == "max" else min_element
        try:
            return pick(value)
        except ValueError as exc:
            raise self.error(f"{name}(): {exc}", node) from None

    @staticmethod
    def unknown_function(name: str) -> str:
        close = difflib.get_close_matches(name, ALLOWED_FUNCTIONS, n=1)
        if close:
            return f"unknown function {name!r}: did you mean {close[0]!r}?"
        return f"unknown function {name!r}: the allowed functions are {', '.join(ALLOWED_FUNCTIONS)}"

    def call_with_params(self, name: str, spec: FunctionSpec, node: ast.Call, expect=SCALAR):
        usage = spec.usage(name)
        if len(node.args) > len(spec.params):
            raise self.error(f"{name}() takes at most {len(spec.params)} arguments, got {len(node.args)}: "
                             f"usage {usage}", node)
        given = {param.name: arg for param, arg in zip(spec.params, node.args)}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error("unpacking (**) is not allowed", keyword)
            self.identifier(keyword.arg, keyword)
            if keyword.arg not in {p.name for p in spec.params}:
                raise self.error(f"{name}() has no argument {keyword.arg!r}: usage {usage}", keyword)
            if keyword.arg in given:
                raise self.error(f"{name}() got the argument {keyword.arg!r} twice", keyword)
            given[keyword.arg] = keyword.value
        missing = [p.name for p in spec.params if not p.optional and p.name not in given]
        if missing:
            raise self.error(f"{name}() is missing {', '.join(map(repr, missing))}: usage {usage}", node)
        first = spec.params[0].name
        if spec.elementwise and first in given:  # exp(z): element by element when z is a vector
            value = self.visit(given[first], expect)
            if _is_vector(value):
                rest = {p.name: self.argument(name, p, given[p.name]) for p in spec.params[1:] if p.name in given}
                return self.elementwise(lambda element: self.build(name, spec, node, [element], rest), value, None,
                                        node)
        values = {p.name: self.argument(name, p, given[p.name]) for p in spec.params if p.name in given}
        self.check_indices(name, spec, values, given)
        positional = [values[p.name] for p in spec.params if not p.optional]
        keywords = {p.name: values[p.name] for p in spec.params if p.optional and p.name in values}
        return self.build(name, spec, node, positional, keywords)

    def argument(self, fname: str, param: Param, node):
        if param.kind == VECTOR:
            value = self.visit(node, VECTOR)
            if not _is_vector(value):
                raise self.error(f"{fname}(): the argument {param.name!r} must be a vector, got {_show(value)}", node)
        else:
            value = self.scalar(node, f"the argument {param.name!r} of {fname}()")
        self.note_domain(node, param.domain, param.kind, value)
        return value

    def check_indices(self, fname: str, spec: FunctionSpec, values: dict, given: dict):
        """Class-index arguments: integers, and numbers when the vectors have a concrete length."""
        sizes = [length(values[p.name]) for p in spec.params if p.kind == VECTOR and p.name in values]
        size = next((s for s in sizes if isinstance(s, int)), sizes[0] if sizes else n_symbol)
        for p in spec.params:
            if p.kind == INDEX and p.name in values:
                # the range against concrete sizes is the catalogue's check (PyTorch's wording)
                self.class_index(given[p.name], size if not values[p.name].is_number else None,
                                 f"the class index {p.name!r} of {fname}()")

    def build(self, name: str, spec: FunctionSpec, node, positional: list, keywords: dict):
        try:
            result = spec.build(*positional, **keywords)
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
            raise self.error(f"{name}(): {exc}", node) from None
        return result if _is_vector(result) else sp.sympify(result)  # a SymPy object or a Python number

    def indexed_sum(self, node: ast.Call):
        """``sum(body, i)``: ``Sum(body, (i, 0, n - 1))``, unrolled when ``n`` is concrete."""
        body, index_node = node.args
        if not isinstance(index_node, ast.Name):
            raise self.error("sum(body, i): the second argument must be an index name such as i", index_node)
        name = self.identifier(index_node.id, index_node)
        if (name in FUNCTIONS or name in _BUILTIN_NAMES or name in _CONSTANTS or name == "n"
                or name in self.names or name in self.bound or name in self.kinds):
            raise self.error(f"{name!r} cannot be a summation index here: choose another name", index_node)
        symbol = bound_index(name)  # never the free index of that name (z[i] outside the sum stays free)
        values = [sp.Integer(m) for m in range(self.n)] if isinstance(self.n, int) else [symbol]
        terms = []
        for value in values:
            self.bound[name] = value
            try:
                terms.append(self.scalar(body, "the summand"))
            finally:
                del self.bound[name]
        if isinstance(self.n, int):
            return sp.Add(*terms)
        return sp.Sum(terms[0], (symbol, 0, self.n - 1))

    _VISITORS = {
        ast.Constant: constant, ast.Name: name, ast.List: vector_literal, ast.UnaryOp: unary,
        ast.BinOp: binary, ast.Subscript: subscript, ast.Call: call,
    }


# --- entry point ------------------------------------------------------------------------------

def _vector_evidence(tree: ast.AST) -> set:
    """Names that are vectors wherever they appear: indexed (``z[c]``), summed (``sum(v)``), their
    largest element taken (``max(z)``), or passed directly where a function expects a vector."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            names.add(node.value.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            spec = FUNCTIONS.get(node.func.id)
            if spec is None:
                continue
            if spec.variadic and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
                names.add(node.args[0].id)
                continue
            params = {p.name: p for p in spec.params}
            given = list(zip(spec.params, node.args)) + [(params.get(kw.arg), kw.value) for kw in node.keywords]
            for param, arg in given:
                if param is not None and param.kind == VECTOR and isinstance(arg, ast.Name):
                    names.add(arg.id)
    return names


def _check_brackets(text: str) -> None:
    depth, line, column = 0, 1, 0
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        elif char in "([{":
            depth += 1
            if depth > MAX_BRACKETS:
                raise FormulaError(f"brackets are nested more than {MAX_BRACKETS} deep", column, line)
        elif char in ")]}":
            depth -= 1


def _check_depth(tree: ast.AST) -> None:
    """Iteratively (no recursion), refuse syntax trees deeper than MAX_DEPTH."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(f"the formula is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _classes(n):
    if n is None:
        return n_symbol
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be None (symbolic) or an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_CLASSES:
        raise ValueError(f"n must be between 1 and {MAX_CLASSES}, got {n}")
    return n


def _names(names) -> dict:
    if names is None:
        return {}
    checked = {}
    for key, value in dict(names).items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise ValueError(f"names: {key!r} is not an allowed name (identifiers not starting with '_')")
        if key in FUNCTIONS or key == "n":
            raise ValueError(f"names: {key!r} is reserved" + (" (give the number of classes as n=...)"
                                                               if key == "n" else " (a function)"))
        checked[key] = _name_value(key, value)
    return checked


def parse_with_domains(text: str, n: int | None = None, names: dict | None = None, with_kinds: bool = False) -> tuple:
    """``(expression, natural domains, conditions)``: as :func:`parse_formula`, and for each free name
    passed to a catalogue function the domain where that function is defined (``entropy(p)``: ``p`` a
    distribution), and for an expression passed there, the condition ``(expression, domain)``
    (``label_smoothing=eps/2``: ``eps/2`` in [0, 1]). With a concrete ``n`` a named vector is ``z[0], ..., z[n-1]`` (so that its
    elements can be drawn together, e.g. summing to 1). ``with_kinds``: also ``{free name: "vector" | "scalar"}``."""
    builder = _builder(text, n, names, indexed_vectors=True)
    out = builder.result, dict(builder.natural), list(builder.conditions)
    return out + ({name: str(kind) for name, kind in builder.kinds.items()},) if with_kinds else out


def _builder(text, n, names, indexed_vectors=False) -> "_Builder":
    if not isinstance(text, str):
        raise TypeError(f"a formula must be a string, got {type(text).__name__}")
    size, values = _classes(n), _names(names)
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is too long ({len(text)} characters, at most {MAX_LENGTH})")
    if not text.strip():
        raise FormulaError("the formula is empty")
    _check_brackets(text)
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in string literals, rejected anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"invalid syntax: {exc.msg}", exc.offset, exc.lineno) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; parser limits
        raise FormulaError(f"invalid formula: {exc}") from None
    _check_depth(tree)
    builder = _Builder(text.strip(), size, values, indexed_vectors)
    try:
        builder.result = builder.formula(tree)
    except RecursionError:
        raise FormulaError("the formula is nested too deeply") from None
    return builder


def parse_formula(text: str, n: int | None = None, names: dict | None = None) -> sp.Basic:
    """Parse a formula safely into a SymPy expression (or an unevaluated relation for ``lhs == rhs``).

    ``n``: the number of classes, ``None`` for the catalogue's symbolic ``n``; ``names``: values
    for identifiers (numbers, SymPy expressions, vectors). Raises :class:`FormulaError` (a
    ``ValueError``) for anything malformed or not allowed; see the module docstring for the grammar.

    >>> parse_formula("logsumexp(z) - z[c]") == logsumexp(vector("z")) - vector("z")[c]
    True
    """
    return _builder(text, n, names).result


# --- symxent verify -----------------------------------------------------------------------------

#: attempts to run code through a formula; each must be a FormulaError
INJECTION_ATTEMPTS = (
    "__import__('os').system('echo hi')",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: 1)()",
    "[x for x in ()]",
    "open('/etc/passwd')",
    "eval('1')",
    "exec",
    "getattr(z, 'x')",
    "z.__class__",
    'f"{1}"',
    "import os",
    "x; y",
    "(x := 1)",
    "9**9**9**9",
    "(" * 10_000 + "x" + ")" * 10_000,
)


def _check_rejects_injection() -> tuple:
    accepted = []
    for attempt in INJECTION_ATTEMPTS:
        try:
            parse_formula(attempt)
        except FormulaError:
            continue
        accepted.append(attempt[:40])
    if accepted:
        return False, f"accepted {len(accepted)} attempts: {accepted}"
    return True, f"all {len(INJECTION_ATTEMPTS)} injection attempts rejected with FormulaError"


def _check_round_trip() -> tuple:
    z = vector("z")
    cases = {
        "logsumexp(z) - z[c]": logsumexp(z) - z[c],
        "ce(z, c)": logsumexp(z) - z[c],
        "softmax(z)[k]": sp.exp(z[k]) / sp.Sum(sp.exp(z[bound_index("j")]), (bound_index("j"), 0, n_symbol - 1)),
        "0.1 + 0.2": sp.Rational(3, 10),
    }
    wrong = [text for text, expected in cases.items() if parse_formula(text) != expected]
    if wrong:
        return False, f"parsed differently from the catalogue: {wrong}"
    return True, f"{len(cases)} formulas parse to the catalogue's expressions"


def verify_checks() -> list:
    """The parser's checks for ``symxent verify``: injection attempts rejected, formulas round-trip."""
    from ..verify import Check

    return [
        Check("parse", "injection attempts are rejected", _check_rejects_injection),
        Check("parse", "formulas parse to the catalogue's expressions", _check_round_trip),
    ]
