"""Named rewrite rules that turn a derived expression into a stable, printable form.

Each rule is an identity of the prover's catalogue (``symxent.prove.identities``), named in
:attr:`Rule.identity`. A rule refuses to apply unless the prover's verdict on that identity is
``proved`` (verdicts are cached per process). Rules are grouped per target in ``OPTIMS_*`` tuples
and applied in order by :func:`optimize`.

SymPy ships ``sympy.codegen.rewriting.logsumexp_2terms_opt``, which is wrong in 1.14 (it writes
``max(a, b) + log1p(exp(min(a, b)))``: the exponent is not shifted by the max): it is not used here, and neither are ``optims_c99`` (its ``log1p`` rule turns the
stable ``log(1 + exp(-|x|))`` into an overflowing form).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

import sympy as sp
from sympy.codegen.cfunctions import exp2, log1p
from sympy.concrete.delta import deltasummation

from ..definitions import log_sigmoid, softplus
from ..definitions.symbols import n as N
from .nodes import BOUND, LogSumExp, RowMax

#: every registered rule by name
RULES: dict = {}


class UnprovedRewriteError(RuntimeError):
    """A rewrite rule was asked to apply, but the prover has not proved its identity."""


@functools.lru_cache(maxsize=None)
def identity_verdict(identity: str) -> str:
    """The prover's status for the catalogue identity ``identity`` (cached per process)."""
    from ..prove.identities import IDENTITIES, check_identity
    rows = {row.name: row for row in IDENTITIES}
    if identity not in rows:
        return "missing from the identity catalogue (symxent.prove.identities)"
    result = check_identity(rows[identity])
    if result.identity.expected != "proved":
        return f"catalogued as {result.identity.expected}, not a true identity"
    return str(result.verdict.status)


def require_proved(rule: "Rule") -> None:
    status = identity_verdict(rule.identity)
    if status != "proved":
        raise UnprovedRewriteError(
            f"rewrite {rule.name!r} needs identity {rule.identity!r} proved; the prover says: {status}")


@dataclass(frozen=True)
class Rule:
    """A rewrite ``before -> after`` justified by the catalogue identity ``identity``."""

    name: str
    identity: str
    transform: Callable[[sp.Expr], sp.Expr]
    doc: str

    def __call__(self, expr: sp.Expr) -> sp.Expr:
        require_proved(self)
        return self.transform(expr)


def register(identity: str):
    """Decorator: register ``transform`` as the rule of that name, proved by ``identity``."""
    def wrap(transform):
        rule = Rule(transform.__name__, identity, transform, (transform.__doc__ or "").strip())
        RULES[rule.name] = rule
        return rule
    return wrap


def optimize(expr: sp.Expr, optims: Iterable[Rule]) -> sp.Expr:
    """Apply ``optims`` in order."""
    for rule in optims:
        expr = rule(expr)
    return expr


# --- the rules ------------------------------------------------------------------------------

@register("logsumexp_shift")
def logsumexp_shift(expr):
    """``LogSumExp(z[j]) -> RowMax(z[j]) + log(Sum(exp(z[j] - RowMax(z[j])), (j, 0, n - 1)))``

    Shifting by the row maximum keeps every exponent <= 0: no overflow, and the sum is >= 1.
    (The same for any row element ``f(j)`` in place of ``z[j]``.)
    """
    def shifted(node):
        m = RowMax(node.element)
        j = sp.Dummy("j", integer=True, nonnegative=True)
        return m + sp.log(sp.Sum(sp.exp(node.element_at(j) - m), (j, 0, N - 1)))
    return expr.replace(lambda e: isinstance(e, LogSumExp), shifted)


@register("exp_add_log")
def exp_add_log(expr):
    """``exp(a + b*log(x)) -> exp(a) * x**b``  (x > 0)

    After ``logsumexp_shift``, ``exp(z[k] - LogSumExp(z))`` reads ``exp(z[k] - m) / S``: the
    shifted exponential is shared with the sum ``S``, and the division is by ``S >= 1``.
    """
    def split(e):
        logs, rest = [], []
        for term in sp.Add.make_args(e.args[0]):
            coeff, factor = term.as_coeff_Mul()
            (logs if isinstance(factor, sp.log) and factor.args[0].is_positive else rest).append((coeff, factor))
        if not logs:
            return e
        return sp.exp(sp.Add(*(c * f for c, f in rest))) * sp.Mul(*(f.args[0] ** c for c, f in logs))
    return expr.replace(lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], sp.Add), split)


@register("sum_linearity")
def sum_linearity(expr):
    """``Sum(a*f(i) + g(i), i) -> a*Sum(f(i), i) + Sum(g(i), i)``  (a independent of i)

    Pulls row scalars out of class-axis sums, so each sum is one accumulator of one pass.
    """
    def split(s):
        if len(s.limits) != 1:
            return s
        index, lower, upper = s.limits[0]
        body = sp.expand(s.function, deep=False, power_exp=False, power_base=False, log=False, multinomial=False)
        out = []
        for term in sp.Add.make_args(body):
            inner, outer = [], []
            for factor in sp.Mul.make_args(term):
                (inner if index in factor.free_symbols else outer).append(factor)
            count = upper - lower + 1
            out.append(sp.Mul(*outer) * (sp.Sum(sp.Mul(*inner), s.limits[0]) if inner else count))
        return sp.Add(*out)
    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


@register("sum_shift")
def sum_shift(expr):
    """``Sum(u(i)*z[i] + v(i), i) -> Sum(u(i)*(z[i] - m) + v(i), i) + m*Sum(u(i), i)``, m = RowMax(z[j])

    A class-axis sum linear in a row's element accumulates the max-shifted element instead, and
    ``m*Sum(u)`` is multiplied into the sum's coefficient, where it cancels against the ``m`` of the
    max-shifted logsumexp: ``Sum(w*(z - lse))`` is computed as ``Sum(w*(z - m)) - log(S)*Sum(w)``,
    not as the difference of the large ``Sum(w*z)`` and ``m*Sum(w)``. Runs after ``sum_linearity``
    (which splits sums into one product each). Sums whose body already holds ``m`` are left alone.
    """
    shifts = [(node.element, node) for node in expr.atoms(RowMax)]
    shifted = {}
    for s in expr.atoms(sp.Sum):
        value = _shift_sum(s, shifts)
        if value is not None:
            shifted[s] = value

    def distribute(mul):
        factor = next(f for f in mul.args if f in shifted)
        rest = sp.Mul(*[f for f in mul.args if f is not factor])
        return sp.Add(*(rest * term for term in sp.Add.make_args(shifted[factor])))
    if not shifted:
        return expr
    expr = expr.replace(lambda e: e.is_Mul and any(f in shifted for f in e.args), distribute)
    expr = expr.xreplace(shifted)
    for _, m in shifts:
        expr = expr.replace(lambda e: e.is_Add and sum(m in sp.Mul.make_args(t) for t in e.args) > 1,
                            lambda e: _collect_factor(e, m))
    return expr


def _collect_factor(add, m):
    """``m*a + m*b + c -> m*(a + b) + c`` with ``a + b`` multiplied out (not inside sums), so
    that ``m*(1 - eps)*S - m*(1 - eps)*S`` cancels."""
    terms = [sp.Mul.make_args(t) for t in add.args]
    with_m = [sp.Mul(*[f for f in factors if f != m]) for factors in terms if m in factors]
    rest = [sp.Mul(*factors) for factors in terms if m not in factors]
    return sp.Add(*rest) + m * sp.Add(*(sp.expand_mul(t, deep=False) for t in with_m))


def _shift_sum(s, shifts):
    """``Sum(u*(z[i] - m) + v) + m*Sum(u)`` for the class-axis sum ``s = Sum(u*z[i] + v)`` linear in
    the element ``z[i]`` of a row with the shift ``m`` in ``shifts`` ((element, m) pairs); else None."""
    if len(s.limits) != 1:
        return None
    index, lower, upper = s.limits[0]
    body = s.function
    for element, m in shifts:
        if body.has(m):
            continue
        value = element.xreplace({BOUND: index})
        e = sp.Dummy("e", real=True)
        in_e = body.xreplace({value: e}) if isinstance(value, sp.Indexed) else body.subs(value, e)
        if not in_e.has(e) or in_e.atoms(sp.Indexed) & value.atoms(sp.Indexed):
            continue  # no element of the row, or the row also appears otherwise
        slope = sp.diff(in_e, e)
        rest = sp.expand(in_e - slope * e)
        if slope.has(e) or rest.has(e):
            continue  # not linear in the element
        total = sp.Sum(slope, s.limits[0]) if index in slope.free_symbols else slope * (upper - lower + 1)
        return sp.Sum(slope * (value - m) + rest, s.limits[0]) + m * total
    return None


@register("softplus_stable")
def softplus_stable(expr):
    """``softplus(x) -> Max(x, 0) + log1p(exp(-Abs(x)))``

    ``log(1 + exp(x))`` overflows for large x; here the exponent is never positive.
    """
    return expr.replace(lambda e: isinstance(e, softplus),
                        lambda e: sp.Max(e.args[0], 0) + log1p(sp.exp(-sp.Abs(e.args[0]))))


@register("log_sigmoid_stable")
def log_sigmoid_stable(expr):
    """``log_sigmoid(x) -> Min(x, 0) - log1p(exp(-Abs(x)))``

    ``-log(1 + exp(-x))`` overflows for very negative x; here the exponent is never positive.
    """
    return expr.replace(lambda e: isinstance(e, log_sigmoid),
                        lambda e: sp.Min(e.args[0], 0) - log1p(sp.exp(-sp.Abs(e.args[0]))))


@register("log1p_def")
def log1p_def(expr):
    """``log(1 + x) -> log1p(x)``

    ``log(1 - p)`` rounds ``1 - p`` to 1 for tiny p and loses p entirely; ``log1p(-p)`` keeps it
    (PyTorch's binary_cross_entropy uses ``log1p(-p)``).
    """
    def one_plus(e):
        return isinstance(e, sp.log) and isinstance(e.args[0], sp.Add) and sp.S.One in e.args[0].args
    return expr.replace(one_plus, lambda e: log1p(e.args[0] - 1))


#: log2(e) = 1/log(2), a named constant (a number would be multiplied into a sum's terms by SymPy); the CUDA
#: printer writes it as its fp32 value
LOG2E = sp.Symbol("log2e", positive=True)


@register("exp_as_exp2")
def exp_as_exp2(expr):
    """``exp(u) -> exp2(log2(e)*u)``

    A GPU's exponential is ``MUFU.EX2`` (2^y). The exponent stays whole: ``exp(z - m)`` is ``exp2(log2(e)*(z -
    m))``, one FADD (``z - m``, exact near the maximum), one FMUL and one ``EX2``. Multiplying log2(e) into the
    terms (``log2(e)*z - log2(e)*m``: one FFMA) would round ``log2(e)*m`` alone: at logits of 1e4 an error of
    3e-4 relative in every exponential, which this form does not have.
    """
    return expr.replace(lambda e: isinstance(e, sp.exp), lambda e: exp2(LOG2E * e.args[0]))


@register("target_logit_is_class_sum")
def delta_sum(expr):
    """``Sum(KroneckerDelta(j, t)*f(j), (j, 0, n - 1)) -> Piecewise((f(t), (t >= 0) & (t <= n - 1)), (0, True))``

    The sifting property (the catalogue row: ``z[c] = Sum(KroneckerDelta(j, c)*z[j])``, c a class of the
    row), and where ``t`` is no class of the row every term is 0. A target term written as a class sum
    (a vocab-parallel shard's part of ``z_t``) becomes one gathered element, 0 on the shards that do
    not own ``t``. SymPy's ``deltasummation`` evaluates it.
    """
    def sifts(e):
        """A one-limit sum with a factor KroneckerDelta(j, t), j its index and t free of j."""
        if not isinstance(e, sp.Sum) or len(e.limits) != 1:
            return False
        index = e.limits[0][0]
        for factor in sp.Mul.make_args(e.function):
            if isinstance(factor, sp.KroneckerDelta) and index in factor.args:
                other = [a for a in factor.args if a != index]
                if len(other) == 1 and index not in other[0].free_symbols:
                    return True
        return False
    return expr.replace(sifts, lambda e: deltasummation(e.function, e.limits[0]))


#: the stabilising rules every target uses, in order
STABILIZE = (RULES["logsumexp_shift"], RULES["exp_add_log"], RULES["sum_linearity"], RULES["sum_shift"],
             RULES["softplus_stable"], RULES["log_sigmoid_stable"], RULES["log1p_def"])
#: each target's rules: class sums of a KroneckerDelta sifted first (none in the built-in losses, which index
#: their target directly; the vocab-parallel shard kernels name ``delta_sum`` in their own ``Loss.rules``)
OPTIMS_NUMPY = (RULES["delta_sum"],) + STABILIZE
OPTIMS_TORCH = (RULES["delta_sum"],) + STABILIZE
OPTIMS_C = (RULES["delta_sum"],) + STABILIZE
