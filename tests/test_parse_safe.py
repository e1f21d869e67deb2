"""Safe formula input: formulas parse to the intended SymPy objects, and code never runs.

Expected expressions are built by hand from SymPy primitives (or mpmath at 50 digits), not by the parser.
"""
import builtins
import os
import subprocess
import time

import mpmath
import pytest
import sympy as sp

from symxent.definitions.binding import bound_index
from symxent import c, i, j, k, logsumexp, n, vector
from symxent.prove.parse import ALLOWED_FUNCTIONS, MAX_LENGTH, FormulaError, parse_formula

z, p, q = (sp.IndexedBase(name, real=True) for name in "zpq")
x, eps = sp.symbols("x eps", real=True)


#: the indices a sum binds: never the free i, j of a formula (symxent.definitions.binding)
ib, jb = bound_index("i"), bound_index("j")


def lse(v):
    """log sum_j exp(v_j) over j = 0..n-1, by hand."""
    return sp.log(sp.Sum(sp.exp(v[jb]), (jb, 0, n - 1)))


@pytest.fixture
def no_code_execution(monkeypatch):
    """Replace the ways to run code or commands with recorders; the list must stay empty."""
    calls = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"{name} was called during parsing")
        return record

    for module, attr in [(os, "system"), (os, "popen"), (subprocess, "Popen"), (subprocess, "run"),
                         (builtins, "eval"), (builtins, "exec")]:
        monkeypatch.setattr(module, attr, recorder(f"{module.__name__}.{attr}"))
    yield calls
    monkeypatch.undo()
    assert calls == []


# --- formulas parse to what they say ----------------------------------------------------------

def test_ce_formula_equals_the_catalogue_expression():
    """``logsumexp(z) - z[c]`` is the catalogue's logsumexp of vector z minus its element c."""
    zv = vector("z")
    assert parse_formula("logsumexp(z) - z[c]") == logsumexp(zv) - zv[c]
    assert parse_formula("logsumexp(z) - z[c]") == lse(z) - z[c]


def test_formulas_parse_to_hand_built_expressions(no_code_execution):
    """Each formula equals the SymPy expression written out by hand (and nothing is eval'd)."""
    softmax_c = sp.exp(z[c]) / sp.Sum(sp.exp(z[jb]), (jb, 0, n - 1))
    cases = {
        "-log(softmax(z)[c])": -sp.log(softmax_c),
        "softmax(z, c)": softmax_c,
        "log_softmax(z)[k]": z[k] - lse(z),
        "ce(z, c)": lse(z) - z[c],
        "softmax_cross_entropy(z, c)": lse(z) - z[c],
        "sum(p[i] * log(q[i]), i)": sp.Sum(p[ib] * sp.log(q[ib]), (ib, 0, n - 1)),
        "sum(p)": sp.Sum(p[ib], (ib, 0, n - 1)),
        "x**2 / 2 - 3*x": x**2 / 2 - 3 * x,
        "log(x, 2)": sp.log(x) / sp.log(2),
        "log(x, base=2)": sp.log(x) / sp.log(2),
        "exp(-x) + sqrt(x) + tanh(x) + abs(x)": sp.exp(-x) + sp.sqrt(x) + sp.tanh(x) + sp.Abs(x),
        "max(x, 0) - Min(x, 0)": sp.Max(x, 0) - sp.Min(x, 0),
        "delta(k, c)": sp.KroneckerDelta(k, c),
        "eps * x": eps * x,
        "e**x + pi": sp.exp(x) + sp.pi,
        "n": n,
    }
    for text, expected in cases.items():
        assert parse_formula(text) == expected, text


def test_decimals_are_exact_rationals():
    """``0.1`` is exactly 1/10, never the binary float 0.1000000000000000055..."""
    assert parse_formula("0.1") == sp.Rational(1, 10)
    assert parse_formula("0.1 + 0.2") == sp.Rational(3, 10)
    assert parse_formula("1e-3") == sp.Rational(1, 1000)
    assert parse_formula("2.5e2") == 250
    assert parse_formula("1_000.5") == sp.Rational(2001, 2)
    assert parse_formula("1e-400") == sp.Rational(1, 10**400)
    assert parse_formula("2**1000") == 2**1000
    assert parse_formula("0.5*x") == x / 2


def test_concrete_n_gives_tuples_of_symbols():
    """With n = 3, z is (z0, z1, z2)."""
    z0, z1, z2 = sp.symbols("z0 z1 z2", real=True)
    assert parse_formula("logsumexp(z)", n=3) == sp.log(sp.exp(z0) + sp.exp(z1) + sp.exp(z2))
    assert parse_formula("z[2]", n=3) == z2
    assert parse_formula("softmax(z)[1]", n=2) == sp.exp(z1) / (sp.exp(z0) + sp.exp(z1))
    p0, p1, q0, q1 = sp.symbols("p0 p1 q0 q1", real=True)
    assert parse_formula("sum(p[i] * log(q[i]), i)", n=2) == p0 * sp.log(q0) + p1 * sp.log(q1)
    assert parse_formula("n * x", n=4) == 4 * x


def test_ce_of_concrete_logits_matches_mpmath():
    """CE of logits (1, 2, 3) and target 0 is log(e + e^2 + e^3) - 1 (mpmath, 50 digits)."""
    mpmath.mp.dps = 50
    expected = mpmath.log(mpmath.e + mpmath.e**2 + mpmath.e**3) - 1
    for text, names in [("ce(z, c)", {"z": [1, 2, 3], "c": 0}), ("ce([1, 2, 3], 0)", None),
                        ("-log_softmax([1, 2, 3])[0]", None)]:
        value = parse_formula(text, names=names).evalf(50)
        assert abs(mpmath.mpf(str(value)) - expected) < mpmath.mpf(10) ** -45, text


def test_entropy_of_a_fair_coin_is_one_bit():
    """H(1/2, 1/2) = 1 bit, from a vector literal of decimals."""
    assert sp.simplify(parse_formula("entropy([0.5, 0.5], base=2)") - 1) == 0


def test_top_level_comparison_is_an_unevaluated_relation():
    relation = parse_formula("logsumexp(z) - z[c] == ce(z, c)")
    assert isinstance(relation, sp.Eq)
    assert relation.lhs == lse(z) - z[c] and relation.rhs == lse(z) - z[c]


def test_diff_is_an_unevaluated_derivative():
    derivative = parse_formula("diff(x**3, x)")
    assert derivative == sp.Derivative(x**3, x)
    assert derivative.doit() == 3 * x**2


def test_names_override_the_default_meaning():
    """A name given in ``names`` replaces the symbol; a float value is read as its decimal."""
    assert parse_formula("x * y", names={"y": 0.25}) == x / 4
    assert parse_formula("ce(z, c)", names={"c": 2}) == lse(z) - z[2]


def test_name_used_as_vector_and_scalar_is_an_error():
    with pytest.raises(FormulaError, match="both as a vector and as a scalar"):
        parse_formula("bce(x, t) + x[0]")  # (x + x[0] is a vector now: x shifted by its first element)


@pytest.mark.parametrize("text, message", [
    ("x^2", r"write x\*\*2"),
    ("sofmax(z)[k]", "did you mean 'softmax'"),
    ("log", "is a function"),
    ("entropy(0.5)", "must be a vector"),
    ("softmax(z, k, 3)", "at most 2 arguments"),
    ("softmax(z, q=1)", "no argument 'q'"),
    ("softmax(z)", "is a vector"),
    ("x + y.real", r"attribute access is not allowed \(column 5\)"),
    ("1/0", "division by zero"),
    ("z[-1]", "nonnegative integer"),
    ("z[x]", "not an integer"),
    ("a < b < d", "chained comparisons"),
    ("(x == 1) + 1", "comparison inside a formula"),
], ids=["caret", "typo", "bare-function", "scalar-for-vector", "too-many-args", "unknown-keyword",
        "vector-result", "attribute-column", "division-by-zero", "negative-index", "real-index",
        "chained-comparison", "nested-comparison"])
def test_malformed_formulas_get_a_clear_error(text, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(text)


def test_concrete_vector_needs_numeric_index():
    with pytest.raises(FormulaError, match="index 3 is out of range for 3 classes"):
        parse_formula("z[3]", n=3)
    with pytest.raises(FormulaError, match="must be a number 0..2"):
        parse_formula("ce(z, c)", n=3)


def test_error_reports_the_column():
    with pytest.raises(FormulaError) as info:
        parse_formula("logsumexp(z) + open(x)")
    assert info.value.column == 16 and "unknown function 'open'" in str(info.value)


def test_allowed_functions_include_the_catalogue_and_elementary_functions():
    for name in ["logsumexp", "softmax", "log_softmax", "sigmoid", "softplus", "log_sigmoid", "entropy",
                 "cross_entropy", "kl_divergence", "kl", "self_information", "binary_entropy", "nll",
                 "softmax_cross_entropy", "ce", "softmax_cross_entropy_prob", "bce", "bce_with_logits",
                 "log", "exp", "sqrt", "tanh", "abs", "Abs", "max", "min", "log1p", "delta", "sum"]:
        assert name in ALLOWED_FUNCTIONS, name
    for name in ["eval", "exec", "open", "getattr", "__import__", "compile", "sympify"]:
        assert name not in ALLOWED_FUNCTIONS


# --- injection attempts ---------------------------------------------------------------------------

INJECTIONS = {
    "import-call": "__import__('os').system('echo hi')",
    "subclasses": "().__class__.__bases__[0].__subclasses__()",
    "lambda-call": "(lambda: 1)()",
    "lambda": "lambda: 0",
    "list-comprehension": "[x for x in ()]",
    "generator": "sum(x for x in z)",
    "open": "open('/etc/passwd')",
    "eval": "eval('1')",
    "exec-name": "exec",
    "exec-call": "exec('import os')",
    "getattr": "getattr(z, 'x')",
    "dunder-attribute": "z.__class__",
    "method-attribute": "log(x).func",
    "builtins-name": "__builtins__",
    "globals": "globals()",
    "sympify": "sympify('x')",
    "fstring": 'f"{1}"',
    "fstring-payload": "f\"{__import__('os').system('echo hi')}\"",
    "string": "'a'",
    "bytes": "b'a'",
    "complex": "1j",
    "boolean": "True",
    "none": "None",
    "ellipsis": "...",
    "import-statement": "import os",
    "statements": "x; y",
    "walrus": "x := 1",
    "walrus-parenthesised": "(x := 1)",
    "star-args": "softmax(*[z])",
    "double-star-kwargs": "softmax(**{'z': 1})",
    "dict": "{1: 2}",
    "set": "{x}",
    "tuple": "(x, y)",
    "slice": "z[0:1]",
    "conditional": "x if y else z",
    "boolean-op": "x and y",
    "not": "not x",
    "matmul": "x @ y",
    "call-of-call": "log(x)(y)",
    "private-name": "_x",
    "dunder-keyword": "softmax(z, __class__=1)",
    "fullwidth-open": "\uff4f\uff50\uff45\uff4e('/etc/passwd')",
    "null-byte": "x\x00",
    "yield": "(yield)",
    "await": "await x",
    "empty": "   ",
}


@pytest.mark.parametrize("text", list(INJECTIONS.values()), ids=list(INJECTIONS))
def test_injection_attempt_is_rejected_without_running_code(text, no_code_execution):
    """Every attempt raises FormulaError; os.system, subprocess, eval and exec are never reached."""
    with pytest.raises(FormulaError):
        parse_formula(text)


def test_file_writing_attempts_create_no_file(tmp_path, no_code_execution):
    target = tmp_path / "pwned"
    for text in [f"open('{target}', 'w').write('x')",
                 f"__import__('pathlib').Path('{target}').touch()",
                 f"().__class__.__base__.__subclasses__()[0]('{target}')"]:
        with pytest.raises(FormulaError):
            parse_formula(text)
    assert not target.exists()


@pytest.mark.parametrize("text", [
    "9**9**9**9",
    "9**9**9",
    "x**10**9",
    "(2**1000)**1000",
    "2**9000 * 2**9000",
    "1e99999999",
    "(" * 10_000 + "x" + ")" * 10_000,
    "(" * 150 + "x" + ")" * 150,
    "-" * 1500 + "x",
    "+".join(["x"] * 600),
    "softmax(" * 120 + "z" + ")" * 120,
    "x+" * 5000 + "x",
], ids=["power-tower-4", "power-tower-3", "huge-symbolic-exponent", "huge-power-of-power", "huge-product",
        "huge-decimal-exponent", "10000-nested-parentheses", "150-nested-parentheses", "1500-unary-minus",
        "600-term-chain", "nested-calls", "very-long"])
def test_resource_bombs_are_rejected_quickly(text):
    """Huge numbers, deep nesting and long input raise FormulaError in well under a second."""
    start = time.perf_counter()
    with pytest.raises(FormulaError):
        parse_formula(text)
    assert time.perf_counter() - start < 1.0


def test_length_limit_is_stated():
    with pytest.raises(FormulaError, match=f"at most {MAX_LENGTH}"):
        parse_formula("x" * (MAX_LENGTH + 1))


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        parse_formula(sp.Symbol("x"))
