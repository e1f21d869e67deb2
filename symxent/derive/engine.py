"""Symbolic derivatives for any number of classes n, brought to a canonical, named form.

The pipeline of :func:`gradient` (each stage is one recorded :class:`Step`):

1. differentiate by ``wrt[k]`` (chain rule; SymPy writes ``d z_j / d z_k`` as ``KroneckerDelta(j, k)``);
2. sum over the Kronecker deltas: ``sum_j f(j) delta_jk = f(k)``, valid because every class index
   lies in ``0..n-1`` (SymPy alone leaves a ``Piecewise`` for ``k <= n - 1``);
3. name the softmax: ``exp(z_a) = softmax(z)_a * sum_j exp(z_j)``, expand, split sums by linearity;
   ``sigmoid(-x) = 1 - sigmoid(x)``;
4. apply constraints such as ``sum_i y_i = 1`` (matched with ``dummy_eq``: ``subs`` misses a sum
   whose bound variable has another name);
5. collect: by the given keys (e.g. ``1 - epsilon``), else by the named functions, then ``factor_terms``.

The ``result`` writes softmax out as ``exp(z[k]) / Sum(exp(z[j]), (j, 0, n - 1))``, the very
expression ``softmax(z, k)`` returns; the last step shows it by name.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import sympy as sp
from sympy.concrete.delta import deltasummation

from ..definitions import SymbolicVector, as_expr, class_sum, eliminate, sigmoid
from ..definitions.binding import alpha_rename, canonical, readable
from ..definitions.symbols import k as _k, l as _l


# --- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One equality of a derivation: ``lhs = expr`` (``lhs`` None: continues the previous line)."""

    explanation: str
    expr: sp.Expr
    lhs: str | None = None  # LaTeX of a new left-hand side

    def to_dict(self) -> dict:
        from .latex import derivation_latex
        return dict(explanation=self.explanation, expr=str(self.expr), latex=derivation_latex(self.expr),
                    lhs=self.lhs)


@dataclass(frozen=True)
class Derivation:
    """A derivative of ``expr`` by ``wrt`` (one variable, or two for a Hessian) with its steps."""

    name: str
    expr: sp.Expr
    wrt: tuple
    result: sp.Expr
    steps: list = field(default_factory=list)
    seconds: float = 0.0
    symbol: str = r"\ell"

    @property
    def named_result(self) -> sp.Expr:
        """The result as a reader writes it: softmax (and sigmoid) by name, bound indices readable (the last
        step); :attr:`result` is the same with softmax written out, for the generator and the prover."""
        return self.steps[-1].expr if self.steps else self.result

    def latex(self) -> str:
        r"""The steps as an ``align*`` block of equalities, explanations as ``\text{...}``."""
        from .latex import derivation_align
        return derivation_align(self)

    def to_dict(self) -> dict:
        return dict(name=self.name, expr=str(self.expr), wrt=[str(v) for v in self.wrt],
                    result=str(self.result), named_result=str(self.named_result),
                    steps=[s.to_dict() for s in self.steps],
                    seconds=self.seconds, latex=self.latex())


@dataclass(frozen=True)
class Rewrite:
    """A rewrite of the function before differentiating, e.g. dropping an inactive clamp."""

    explanation: str
    apply: Callable[[sp.Expr], sp.Expr]


# --- the named softmax ----------------------------------------------------------------------

class SoftmaxElement(sp.Function):
    r"""Marker for :math:`\mathrm{softmax}(z)_a = e^{z_a} / \sum_j e^{z_j}`: args ``(IndexedBase z, a, n)``.

    It only names the piece for display; ``doit()`` writes it out.
    """

    nargs = 3

    def doit(self, **hints):
        base, index, size = self.args
        return sp.exp(base[index]) / softmax_normaliser(base, size, avoid=index.free_symbols)

    def _sympystr(self, printer):
        base, index, _ = self.args
        return f"softmax({printer._print(base)})[{printer._print(index)}]"

    def _eval_is_positive(self):
        return True


def softmax_normaliser(base: sp.IndexedBase, size, avoid=()) -> sp.Sum:
    """``Sum(exp(z[j]), (j, 0, n - 1))``, the very denominator ``softmax`` writes (its bound index
    never equals a free one)."""
    return class_sum(lambda m: sp.exp(base[m]), SymbolicVector(base, size), index="j")


def named(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every :class:`SoftmaxElement` written out."""
    return expr.replace(lambda e: isinstance(e, SoftmaxElement), lambda e: e.doit())


# --- passes ---------------------------------------------------------------------------------

def _single_limit_sums(pred=lambda s: True):
    """A ``replace`` query: Sums over one index that satisfy ``pred``."""
    return lambda e: isinstance(e, sp.Sum) and len(e.limits) == 1 and pred(e)


def sum_kronecker_deltas(expr: sp.Expr) -> sp.Expr:
    r""":math:`\sum_{j=0}^{n-1} f(j)\,\delta_{jk} = f(k)` for ``0 <= k <= n - 1`` (no Piecewise)."""
    def has_delta(s):
        v = s.limits[0][0]
        return any(v in d.free_symbols for d in s.function.atoms(sp.KroneckerDelta))
    return expr.replace(_single_limit_sums(has_delta),
                        lambda s: deltasummation(s.function, s.limits[0], no_piecewise=True))


def split_sums(expr: sp.Expr) -> sp.Expr:
    r"""Linearity: :math:`\sum (a f_i + g_i) = a \sum f_i + \sum g_i`; :math:`\sum_{i=0}^{n-1} a = n a`."""
    def split(s):
        (v, lo, hi), = s.limits
        total = sp.S.Zero
        for term in sp.Add.make_args(sp.expand_mul(s.function)):
            outside, inside = term.as_independent(v, as_Add=False)
            total += outside * (hi - lo + 1 if inside == 1 else sp.Sum(inside, (v, lo, hi)))
        return total
    return expr.replace(_single_limit_sums(), split)


def apply_constraints(expr: sp.Expr, constraints: Iterable) -> sp.Expr:
    """Replace each constrained sum (``Eq(Sum(y[i], ...), 1)``) by its value, whatever its bound name."""
    for constraint in constraints:
        lhs, rhs = (constraint.lhs, constraint.rhs) if isinstance(constraint, sp.Eq) else constraint
        expr = expr.replace(lambda e: isinstance(e, type(lhs)) and e.dummy_eq(lhs), lambda e: rhs)
    return expr


def name_softmax(expr: sp.Expr, base: sp.IndexedBase, size) -> sp.Expr:
    """``exp(z_a) -> softmax(z)_a * S`` with ``S = sum_j exp(z_j)``, so that ``S`` cancels."""
    normaliser = softmax_normaliser(base, size)
    S = sp.Dummy("S", positive=True)
    expr = expr.replace(lambda e: isinstance(e, sp.Sum) and e.dummy_eq(normaliser), lambda e: S)
    expr = expr.replace(lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], sp.Indexed)
                        and e.args[0].base == base,
                        lambda e: SoftmaxElement(base, e.args[0].indices[0], size) * S)
    return expr.xreplace({S: normaliser})


def sigmoid_symmetry(expr: sp.Expr) -> sp.Expr:
    r""":math:`\sigma(-x) = 1 - \sigma(x)`."""
    return expr.replace(lambda e: isinstance(e, sigmoid) and e.args[0].could_extract_minus_sign(),
                        lambda e: 1 - sigmoid(-e.args[0]))


def expand_linear(expr: sp.Expr) -> sp.Expr:
    """Multiply out products over sums (not inside exp/log) and split sums by linearity."""
    return split_sums(sp.expand(expr, power_exp=False, power_base=False, log=False, multinomial=True))


def _named_functions(expr):
    return sorted(expr.atoms(SoftmaxElement, sigmoid), key=sp.default_sort_key)


def freeze(expr: sp.Expr, keys: Sequence[sp.Expr]):
    """Replace each Add key (e.g. ``1 - epsilon``, also met as ``epsilon - 1``) by a symbol, so that
    expanding keeps it whole. Returns ``(expr, keys with symbols, {symbol: key})``."""
    frozen, symbols = {}, []
    for key in keys:
        if isinstance(key, sp.Add):
            d = sp.Dummy("K")
            frozen[d] = key
            expr = expr.xreplace({key: d, sp.expand(-key): -d})
            key = d
        symbols.append(key)
    return expr, symbols, frozen


def collect_terms(expr: sp.Expr, keys: Sequence[sp.Expr] = ()) -> sp.Expr:
    """Group by ``keys``, else by the named functions (softmax, sigmoid); each group and the whole
    through ``factor_terms``; a rational result over one denominator."""
    expr = expand_linear(expr)
    named_fns = _named_functions(expr)

    def tidy(e):
        return sp.factor_terms(sp.collect(e, named_fns, func=sp.factor_terms) if named_fns else e)

    expr = sp.collect(expr, list(keys), func=tidy) if keys else tidy(expr)
    return _tidy_fraction(expr)


def _tidy_fraction(expr: sp.Expr) -> sp.Expr:
    """A rational result over one factored denominator, written with ``1 - p`` rather than ``p - 1``."""
    if not any(p.exp.is_negative and p.base.is_Add for p in expr.atoms(sp.Pow)) \
            or expr.has(sp.Sum, SoftmaxElement, sigmoid):
        return expr
    numerator, denominator = sp.fraction(sp.factor(sp.together(expr)))
    sign, factors = 1, []
    for f in sp.Mul.make_args(denominator):
        base, power = f.as_base_exp()
        if base.is_Add and base.as_coeff_Add()[0].is_negative:
            base, sign = -base, sign * (-1) ** power
        factors.append(base ** power)
    return (sign * numerator) / sp.Mul(*factors)


# --- the engine -----------------------------------------------------------------------------

def _variable(wrt, index):
    if isinstance(wrt, SymbolicVector):
        return wrt[index], wrt.base, wrt.length
    if isinstance(wrt, sp.IndexedBase):
        from ..definitions.symbols import n
        return wrt[index], wrt, n
    if isinstance(wrt, sp.Indexed):  # one element, e.g. z[0] of a concrete vector: no length to name softmax by
        return wrt, wrt.base, None
    if isinstance(wrt, sp.Symbol):
        return wrt, None, None
    raise TypeError(f"wrt: expected a SymbolicVector, an IndexedBase, an Indexed or a Symbol, got {type(wrt).__name__}")


def _partial(symbol: str, variables) -> str:
    from .latex import derivation_latex
    order = "" if len(variables) == 1 else f"^{{{len(variables)}}}"
    below = " ".join(rf"\partial {derivation_latex(v)}" for v in variables)
    return rf"\frac{{\partial{order} {symbol}}}{{{below}}}"


def _indices_summed_over(expr, base) -> list:
    """The (printed) names of the indices that sums in ``expr`` run over in ``base[...]``."""
    names = []
    for s in sp.preorder_traversal(expr):
        if isinstance(s, sp.Sum):
            index = s.limits[0][0]
            if any(e.base == base and e.indices == (index,) for e in s.function.atoms(sp.Indexed)):
                names.append(index.name) if index.name not in names else None
    return names


def _derivative_steps(expr, var, base, size, lhs, constraints, keys):
    """Steps and result of ``d expr / d var``; the first step carries ``lhs``. Each step is shown with
    readable bound indices (never the name of the free index ``var`` carries)."""
    from .latex import derivation_latex
    steps = []
    expr, keys, frozen = freeze(expr, keys)

    def shown(e):
        return readable(e.xreplace(frozen), avoid=[var])

    def record(explanation, e):
        e = shown(e)
        if not steps or e != steps[-1].expr:
            steps.append(Step(explanation, e, None if steps else lhs))

    raw = sp.diff(expr, var)
    if base is not None:
        z, a = derivation_latex(base), derivation_latex(var.indices[0])
        summed = _indices_summed_over(shown(raw), base)
        if summed:
            record("chain rule, " + ", ".join(rf"$\partial {z}_{{{b}}} / \partial {z}_{{{a}}} = \delta_{{{b}{a}}}$"
                                              for b in summed), raw)
        else:
            record("differentiate", raw)
        picked = split_sums(sum_kronecker_deltas(raw))
        if summed:
            record(", ".join(rf"a sum over $\delta_{{{b}{a}}}$ keeps the term ${b} = {a}$" for b in summed)
                   + rf" ($0 \le {a} \le n - 1$); split sums", picked)
        else:
            record("split sums", picked)
        current = expand_linear(picked if size is None else name_softmax(picked, base, size))
        if current.has(SoftmaxElement):
            b = (_indices_summed_over(shown(softmax_normaliser(base, size)), base) or ["j"])[0]
            record(rf"name $\mathrm{{softmax}}({z})_{{{a}}} = e^{{{z}_{{{a}}}}} / \sum_{{{b}}} e^{{{z}_{{{b}}}}}$, "
                   "expand", current)
        else:
            record("expand, split sums", current)
    else:
        record("differentiate", raw)
        current = sigmoid_symmetry(raw)
        record(r"$\sigma(-x) = 1 - \sigma(x)$", current)
    constrained = apply_constraints(current, constraints)
    if constrained != current:
        names = ", ".join(rf"${sp.latex(sp.Eq(*_sides(c)))}$" for c in constraints)
        record(f"use the constraint {names}", constrained)
    canonical_form = collect_terms(constrained, keys)
    by = ", ".join(f"${sp.latex(frozen.get(key, key))}$" for key in keys)
    record(f"collect by {by}" if keys else "collect", canonical_form)
    return steps, readable(named(canonical_form.xreplace(frozen)), avoid=[var])


def _sides(constraint):
    return (constraint.lhs, constraint.rhs) if isinstance(constraint, sp.Eq) else tuple(constraint)


def _opening_steps(expr, definition, rewrites, symbol, avoid=()):
    """The function as defined (and written out, and rewritten), bound indices named away from ``avoid``."""
    steps = []
    if definition is not None:
        steps.append(Step("definition", readable(definition, avoid), symbol))
        steps.append(Step("written out", readable(expr, avoid)))
    else:
        steps.append(Step("definition", readable(expr, avoid), symbol))
    for rewrite in rewrites:
        expr = rewrite.apply(expr)
        steps.append(Step(rewrite.explanation, readable(expr, avoid)))
    return steps, expr


def gradient(expr, wrt, k=_k, constraints: Sequence = (), *, collect: Sequence = (), rewrites: Sequence = (),
             name: str = "", symbol: str = r"\ell", definition: sp.Expr | None = None) -> Derivation:
    r"""``d expr / d wrt[k]`` (or ``d expr / d x`` for a Symbol) in canonical form, with its steps.

    ``constraints``: equalities such as ``Eq(Sum(y[i], (i, 0, n - 1)), 1)``; ``collect``: keys to
    group the result by; ``rewrites``: :class:`Rewrite` s applied before differentiating;
    ``definition``: the function as displayed (e.g. with softmax named), equal to ``expr``.
    """
    start = time.perf_counter()
    var, base, size = _variable(wrt, k)
    # every sum's index its own (a sum written by hand may bind the very symbol that indexes wrt)
    steps, function = _opening_steps(alpha_rename(as_expr(expr, "expr")), definition, rewrites, symbol, avoid=[var])
    more, result = _derivative_steps(function, var, base, size, _partial(symbol, [var]), constraints, collect)
    return Derivation(name, as_expr(expr, "expr"), (var,), result, steps + more, time.perf_counter() - start, symbol)


def hessian(expr, wrt, k=_k, l=_l, constraints: Sequence = (), *, collect: Sequence = (), name: str = "",
            symbol: str = r"\ell", definition: sp.Expr | None = None) -> Derivation:
    r"""``d^2 expr / d wrt[k] d wrt[l]`` in canonical form: the gradient, then its derivative by ``wrt[l]``."""
    start = time.perf_counter()
    var_k, base, size = _variable(wrt, k)
    var_l, _, _ = _variable(wrt, l)
    steps, function = _opening_steps(alpha_rename(as_expr(expr, "expr")), definition, (), symbol,
                                     avoid=[var_k, var_l])
    first, grad = _derivative_steps(function, var_k, base, size, _partial(symbol, [var_k]), constraints, ())
    second, result = _derivative_steps(grad, var_l, base, size, _partial(symbol, [var_k, var_l]),
                                       constraints, collect)
    return Derivation(name, as_expr(expr, "expr"), (var_k, var_l), result, steps + first + second,
                      time.perf_counter() - start, symbol)


# --- a small, honest zero test --------------------------------------------------------------

def is_zero(expr: sp.Expr) -> bool | None:
    """True when ``expr`` simplifies to 0 (named pieces written out, sums renamed canonically);
    None when that does not happen: unknown is not zero."""
    e = canonical(eliminate(named(as_expr(expr, "expr"))))
    for simplifier in (lambda v: sp.cancel(expand_linear(v)), sp.simplify):
        try:
            if simplifier(e) == 0:
                return True
        except (sp.PolynomialError, NotImplementedError, TypeError):  # pragma: no cover - defensive
            continue
    return None
