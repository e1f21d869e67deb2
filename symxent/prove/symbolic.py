"""The symbolic engine: ``lhs - rhs == 0`` (or ``>= 0``) shown by sound rewrites, step by step.

Strategy, each stage recorded in the :class:`~symxent.prove.verdict.Trace`:

1. evaluate derivatives, rewrite sigmoid / softplus / log_sigmoid into ``exp`` / ``log``;
2. bring every ``Sum`` to a normal form (split over ``+``, index-free factors pulled out,
   ``KroneckerDelta`` sums evaluated, bound indices renamed canonically), apply constraints such as
   ``Sum(y[i]) = 1``, treat each remaining ``Sum`` as an atom (positive when its terms are);
3. expand logs of positive quantities and cancel; ``Max`` / ``Min`` / ``Abs`` / ``Piecewise`` are
   decided by splitting into the sign cases of their arguments;
4. for ``>=``: the tactics of ``inequalities.py`` (ranges of the terms, the lemma ``log x <= x - 1``,
   bounds of positive sums by one of their terms or by n times the largest);
5. for a given ``n``: the same steps on the written-out expression, for every value of the free
   class indices.

Only an expression that reduces structurally to ``0`` (or a lower bound shown ``>= 0``) counts: a
``None`` from SymPy is never read as a proof. Free class indices (``k``, ``c``) lie in ``0..n-1``;
the step that uses it says so. Every expansion is size-guarded (``limits.guarded_expand``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.concrete.delta import deltasummation
from sympy.core.relational import Relational

from ..definitions.binding import readable
from ..definitions.functions import eliminate
from .claim import Claim, index_symbols, length_symbols
from .inequalities import Prover, bounds, nonnegative_by_ranges
from .limits import guarded_expand
from .verdict import Trace

#: expressions with more operations than this are not handed to ``simplify`` (too slow)
SIMPLIFY_OPS_LIMIT = 250
#: case splits over more sign atoms than this are not attempted
MAX_SIGN_ATOMS = 4
#: concrete proofs enumerate at most this many assignments of the free class indices
MAX_INDEX_CASES = 64


@dataclass
class Facts:
    """What the engine may use: ``Sum(v[i], (i, 0, n - 1)) = 1`` constraints (normal form), and the
    domain of each variable (for the ranges of ``inequalities.py``)."""

    constraints: list = field(default_factory=list)  # (Sum, value)
    domains: dict = field(default_factory=dict)  # Symbol / IndexedBase -> Domain
    concrete: dict = field(default_factory=dict)  # vector element -> its value (a concrete simplex solved)


# --- preparation ------------------------------------------------------------------------------

def _evaluate_derivatives(expr):
    return expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit(deep=False))


def prepare(expr):
    """Derivatives evaluated; catalogue functions, ``log1p``, ``expm1`` and ``tanh`` rewritten into exp/log."""
    expr = eliminate(_evaluate_derivatives(sp.sympify(expr)))
    expr = expr.replace(lambda e: isinstance(e, sp.tanh), lambda e: e.rewrite(sp.exp))
    return expr.replace(lambda e: isinstance(e, (log1p, expm1)),
                        lambda e: sp.log(1 + e.args[0]) if isinstance(e, log1p) else sp.exp(e.args[0]) - 1)


def engine_view(claim: Claim) -> tuple:
    """``(difference, facts)`` for the engine: the prepared difference with each variable replaced by one
    carrying the sign its domain gives (so that SymPy can use it), and the facts about them."""
    replacements, facts = {}, Facts()
    for variable, domain in [*claim.scalars.items(), *claim.vectors.items()]:
        assumptions = domain.sympy_assumptions()
        probe = variable[0] if isinstance(variable, sp.IndexedBase) else variable
        (key, _), = assumptions.items()
        if getattr(probe, f"is_{key}") or probe.is_integer:  # nothing to add (or an integer: keep it)
            new = variable
        elif isinstance(variable, sp.IndexedBase):
            new = sp.IndexedBase(variable.label, **assumptions)
        else:
            new = sp.Symbol(variable.name, **assumptions)
        replacements[variable] = new
        facts.domains[new] = domain
        if isinstance(new, sp.IndexedBase) and domain.simplex:
            facts.constraints.extend(_simplex_constraint(new, claim))
    difference = prepare(claim.difference).xreplace(replacements)
    return difference, facts


def _simplex_constraint(base, claim: Claim) -> list:
    """``Sum(v[i], (i, 0, n - 1)) = 1`` in normal form, for each symbolic length of the claim."""
    out = []
    for size in claim.lengths:
        index = sp.Dummy("i", integer=True, nonnegative=True)
        out.append((normalise_sums(sp.Sum(base[index], (index, 0, size - 1))), sp.S.One))
    return out


# --- Sum normal form --------------------------------------------------------------------------

_CANONICAL_INDICES: dict = {}


def _canonical_index(level: int) -> sp.Dummy:
    """The bound index used for Sums with ``level`` nested Sums inside: one per level."""
    if level not in _CANONICAL_INDICES:
        _CANONICAL_INDICES[level] = sp.Dummy(f"i{level}", integer=True)
    return _CANONICAL_INDICES[level]


def _sum_level(expr) -> int:
    return max((1 + _sum_level(s.function) for s in expr.atoms(sp.Sum)), default=0)


def normalise_sums(expr):
    """Every Sum split over ``+``, with index-free factors pulled out and Kronecker deltas summed.

    ``sum_i (a f_i + g_i) -> a sum_i f_i + sum_i g_i``; ``sum_i delta_{ik} f_i -> f_k`` (k in range);
    ``sum_i a -> (high - low + 1) a``; bound indices renamed so that equal sums are equal objects.
    """
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Sum):
        return expr
    if isinstance(expr, sp.Sum):
        body = normalise_sums(expr.function)
        for limit in expr.limits:
            body = _sum_over(body, limit)
        return body
    return expr.func(*[normalise_sums(a) for a in expr.args])


def _sum_over(body, limit):
    index, low, high = limit
    total = sp.S.Zero
    for term in sp.Add.make_args(guarded_expand(body)):
        if not term.has(index):
            total += term * (high - low + 1)
            continue
        if _delta_in_range(term, index, low, high):
            summed = deltasummation(term, (index, low, high), no_piecewise=True)
            if not summed.has(index):
                total += normalise_sums(summed)
                continue
        coeff, dependent = term.as_independent(index, as_Add=False)
        canonical = _canonical_index(_sum_level(dependent))
        total += coeff * sp.Sum(dependent.xreplace({index: canonical}), (canonical, low, high))
    return total


def _delta_in_range(term, index, low, high) -> bool:
    """Whether ``term`` has a ``KroneckerDelta(index, m)`` with ``m`` in ``low..high``: a free class
    index (taken to lie in 0..n-1 for sums over 0..n-1) or a number known to lie in the range."""
    over_classes = low == 0 and (high + 1) in length_symbols(high)  # the sum runs over 0..n-1
    for delta in term.atoms(sp.KroneckerDelta):
        if index not in delta.args:
            continue
        other = delta.args[1] if delta.args[0] == index else delta.args[0]
        if over_classes and isinstance(other, sp.Symbol) and other.is_integer and other != high + 1:
            return True
        if other.is_Integer and (other - low).is_nonnegative and (high - other).is_nonnegative:
            return True
    return False


def _merge_sums(expr):
    """``a sum_i f_i + b sum_i g_i -> sum_i (a f_i + b g_i)`` for sums with equal limits (a, b index-free)."""
    groups, rest = {}, sp.S.Zero
    for term in sp.Add.make_args(expr):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1:
            the_sum = sums[0]
            coeff = term / the_sum
            groups.setdefault(the_sum.limits, []).append(coeff * the_sum.function)
        else:
            rest += term
    merged = [sp.Sum(sp.Add(*bodies), *limits) for limits, bodies in groups.items()]
    return sp.Add(rest, *merged)


def _apply_constraints(expr, facts: Facts, trace: Optional[Trace] = None):
    """Replace a constrained Sum by its value: both in normal form, so bound names do not matter
    (the effect of matching with ``dummy_eq``)."""
    for lhs, rhs in facts.constraints:
        new = expr.xreplace({normalise_sums(lhs): rhs})
        if new != expr:
            expr = new
            if trace is not None:
                trace.add(f"constraint {sp.sstr(readable(lhs))} = {sp.sstr(rhs)} applied", expr)
    return expr


def _atomise_sums(expr):
    """Each remaining Sum replaced by a symbol (positive when its terms are positive): (expr, back-map)."""
    forward, backward = {}, {}
    for s in sorted(expr.atoms(sp.Sum), key=sp.default_sort_key):
        body, (index, low, high) = s.function, s.limits[-1]
        nonempty = (high - low).is_nonnegative
        assumptions = {}
        if body.is_positive and nonempty:
            assumptions["positive"] = True
        elif body.is_nonnegative:
            assumptions["nonnegative"] = True
        elif body.is_real:
            assumptions["real"] = True
        atom = sp.Dummy("S", **assumptions)
        forward[s], backward[atom] = atom, s
    # xreplace works top-down: an outer sum is replaced whole, its inner sums with it
    return expr.xreplace(forward), backward


# --- deciding zero ----------------------------------------------------------------------------

def _reduces_to_zero(expr, trace: Trace, back: dict) -> bool:
    """True only when ``expr`` reduces structurally to 0 by sound rewrites."""
    expanded = guarded_expand(sp.expand_log(expr, deep=True))
    trace.add("logs of positive quantities expanded, exponentials split, products expanded", expanded.xreplace(back))
    if expanded == 0:
        return True
    cancelled = sp.cancel(sp.together(expanded))
    trace.add("brought to one fraction and cancelled", cancelled.xreplace(back))
    if cancelled == 0:
        return True
    if sp.count_ops(cancelled) <= SIMPLIFY_OPS_LIMIT:
        simplified = sp.simplify(cancelled)
        trace.add("simplified", simplified.xreplace(back))
        if simplified == 0:
            return True
    return _one_log_is_zero(expanded, trace, back)


def _one_log_is_zero(expr, trace: Trace, back: dict) -> bool:
    """``sum_i c_i log u_i + r = 0`` (c_i rational, u_i > 0, r real) from ``prod u_i^c_i e^r = 1``:
    ``log(e^a + e^b) - a - log(1 + e^(b - a))`` is ``log((e^a + e^b) e^-a / (1 + e^(b - a))) = log 1``."""
    logs, rest = [], sp.S.Zero
    for term in sp.Add.make_args(expr):
        coeff, factors = term.as_coeff_mul()
        if len(factors) == 1 and isinstance(factors[0], sp.log) and coeff.is_Rational and factors[0].args[0].is_positive:
            logs.append((coeff, factors[0].args[0]))
        else:
            rest += term
    if len(logs) < 2 or rest.has(sp.log) or rest.is_real is not True:
        return False
    product = sp.exp(rest) * sp.Mul(*(u ** c for c, u in logs))
    numerator, denominator = sp.fraction(sp.together(product))
    if guarded_expand(sp.powsimp(guarded_expand(numerator) - guarded_expand(denominator), combine="exp")) == 0:
        trace.add("the logs combined into one: log of the product below, which is 1", product.xreplace(back))
        return True
    return False


_SIGN_FUNCTIONS = (sp.Abs, sp.sign, sp.Heaviside)


def _sign_atoms(expr) -> list:
    """The quantities whose sign decides the Max/Min/Abs/Piecewise in ``expr`` (up to sign)."""
    atoms = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _SIGN_FUNCTIONS):
            atoms.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
            atoms.append(node.args[0] - node.args[1])
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                relations = [cond] if isinstance(cond, Relational) else cond.atoms(Relational)
                atoms.extend(rel.lhs - rel.rhs for rel in relations)
    unique = []
    for a in atoms:
        a = -a if a.could_extract_minus_sign() else a
        if a not in unique and not a.is_number:
            unique.append(a)
    return unique


def _sign_cases(atoms: list):
    """Assignments covering all signs of the atoms (each atom a real symbol or Indexed): x > 0, x < 0, x = 0."""
    choices = []
    for a in atoms:
        positive = sp.Dummy(f"{a}", positive=True)
        choices.append([(a, positive, f"{a} > 0"), (a, -positive, f"{a} < 0"), (a, sp.S.Zero, f"{a} = 0")])
    for combo in itertools.product(*choices):
        yield {a: value for a, value, _ in combo}, ", ".join(text for *_, text in combo)


def _decide_equal(expr, trace: Trace, back: dict) -> tuple:
    """(proved, method) for ``expr == 0`` with Sums already atomised."""
    atoms = _sign_atoms(expr)
    if not atoms:
        return _reduces_to_zero(expr, trace, back), "symbolic simplification"
    if len(atoms) > MAX_SIGN_ATOMS or not all(a.is_real and isinstance(a, (sp.Symbol, sp.Indexed)) for a in atoms):
        trace.add("no case split: the signs depend on compound or too many quantities", expr.xreplace(back))
        return _reduces_to_zero(expr, trace, back), "symbolic simplification"
    for values, text in _sign_cases(atoms):
        case = expr.xreplace(values)
        trace.add(f"case {text}", case.xreplace(back), "->")
        if not _reduces_to_zero(case, trace, back):
            trace.add(f"case {text} not shown", case.xreplace(back), "->")
            return False, "case split"
    return True, f"case split on the sign of {', '.join(map(str, atoms))}"


def _symbolic_equal(difference, facts: Facts, trace: Trace) -> tuple:
    """Try to show ``difference == 0`` symbolically; returns (proved, method).

    First with every Sum an atom; then with the Sums of equal limits combined, showing the
    combined summand is 0 for every index (termwise). Only the successful attempt's steps are kept.
    """
    expr = normalise_sums(difference)
    trace.add("sums normalised (split over +, index-free factors pulled out, delta sums taken with "
              "class indices in 0..n-1)", expr)
    expr = _apply_constraints(expr, facts, trace)
    attempt = Trace()
    atomised, back = _atomise_sums(expr)
    ok, method = _decide_equal(atomised, attempt, back)
    if ok or not expr.has(sp.Sum):
        trace.steps.extend(attempt.steps)
        return ok, method
    termwise = Trace()
    ok, method_termwise = _decide_termwise(expr, termwise)
    trace.steps.extend(termwise.steps if ok else attempt.steps + termwise.steps)
    return (True, method_termwise) if ok else (False, method)


def _decide_termwise(expr, trace: Trace) -> tuple:
    """``sum_i f_i - sum_i g_i + rest = 0`` from ``f_i - g_i = 0`` for every i and ``rest = 0``."""
    merged = _merge_sums(expr)
    trace.add("sums with equal limits combined", merged)
    method = "summands equal termwise"
    for term in sp.Add.make_args(merged):
        if isinstance(term, sp.Sum):
            trace.add(f"summand of the sum over {term.limits[0][0]} must be 0", term.function, "->")
            atomised, back = _atomise_sums(term.function)
            ok, how = _decide_equal(atomised, trace, back)
        else:
            continue
        if not ok:
            return False, method
        if how.startswith("case split"):
            method += f" ({how})"
    rest = sp.Add(*[term for term in sp.Add.make_args(merged) if not isinstance(term, sp.Sum)])
    if rest != 0:
        trace.add("the terms outside the sums must be 0", rest, "->")
        atomised, back = _atomise_sums(rest)
        ok, _ = _decide_equal(atomised, trace, back)
        if not ok:
            return False, method
    return True, method


# --- inequalities: the lemma log x <= x - 1 ---------------------------------------------------

def _log_lemma_bound(summand, facts: Optional[Facts] = None, collect: bool = False):
    """A lower bound of ``summand`` from ``log x <= x - 1`` (x > 0), or None if no term applies.

    Log terms are first grouped by their weight: ``w log u - w log v = w log(u / v)``; the weights are
    those of the fully expanded sum (``collect=False``: ``p log(p/m)`` pairs ``log p`` with ``-log m``)
    or each log's whole coefficient (``collect=True``: ``(1 - r) log u`` keeps the weight ``1 - r``).
    Then ``w log u >= w (1 - 1/u)`` for ``w >= 0`` and ``w log u >= w (u - 1)`` for ``w <= 0``.
    """
    domains = facts.domains if facts is not None else {}
    groups, rest = {}, sp.S.Zero
    if collect:
        logs = sorted(summand.atoms(sp.log), key=sp.default_sort_key)
        expanded = guarded_expand(summand, log=False)
        pairs = list(sp.collect(expanded, logs, evaluate=False).items()) if logs else [(sp.S.One, expanded)]
    else:
        pairs = []
        for term in sp.Add.make_args(guarded_expand(summand)):
            logs = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.log)]
            pairs.append((logs[0], term / logs[0]) if len(logs) == 1 else (sp.S.One, term))
    for key, weight in pairs:
        argument = key.args[0] if isinstance(key, sp.log) else None
        if argument is None or weight.has(sp.log) or not (argument.is_positive or _nonnegative(argument, domains)):
            rest += key * weight
            continue
        sign = -1 if weight.could_extract_minus_sign() else 1
        groups.setdefault(sp.factor_terms(sign * weight), []).append((sign, argument))
    if not groups:
        return None
    bound = rest
    for weight, parts in groups.items():
        ratio = sp.Mul(*[u**s for s, u in parts])
        if weight.is_nonnegative or _nonnegative(weight, domains):
            bound += weight * (1 - 1 / ratio)
        elif weight.is_nonpositive or _nonnegative(-weight, domains):
            bound += weight * (ratio - 1)
        else:
            return None
    return bound


def _positive(expr, domains) -> bool:
    lo = bounds(expr, domains)[0]
    return lo != 0 and nonnegative_by_ranges(expr, domains)


def _nonnegative(expr, domains) -> bool:
    """``expr >= 0`` by ranges; for a log's argument that suffices: where it is 0 the log, and with it
    the claim, is undefined, so the lemma is only used where the argument is > 0."""
    return nonnegative_by_ranges(expr, domains)


def _lemma(expr, facts: Facts, trace: Trace) -> bool:
    """``expr >= 0`` by bounding each ``w log u`` from below with ``log x <= x - 1``: the weights of the
    expanded sum first, then each log's whole coefficient. Only the successful attempt's steps are kept."""
    for collect in (False, True):
        attempt = Trace()
        if _lemma_once(expr, facts, attempt, collect):
            trace.steps.extend(attempt.steps)
            return True
    return False


def _lemma_once(expr, facts: Facts, trace: Trace, collect: bool) -> bool:
    merged = _merge_sums(expr)
    trace.add("sums with equal limits combined", merged)
    bound = sp.S.Zero
    for term in sp.Add.make_args(merged):
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) == 1 and ((term / sums[0]).is_positive or _positive(term / sums[0], facts.domains)):
            inner = _log_lemma_bound(sums[0].function, facts, collect)
            bound += term if inner is None else (term / sums[0]) * sp.Sum(inner, *sums[0].limits)
        else:
            inner = _log_lemma_bound(term, facts, collect)
            bound += term if inner is None else inner
    if bound == merged:
        return False
    trace.add("each w log u bounded below with log x <= x - 1 (x > 0); a sum of lower bounds "
              "is a lower bound", bound, ">=")
    bound = _apply_constraints(normalise_sums(bound), facts, trace)
    atomised, back = _atomise_sums(bound)
    simplified = sp.cancel(guarded_expand(atomised))
    trace.add("lower bound simplified", simplified.xreplace(back))
    return simplified == 0 or bool(simplified.is_nonnegative) or \
        nonnegative_by_ranges(simplified.xreplace(back), facts.domains)


def _absorbed(expr, facts: Facts) -> list:
    """``expr`` with its terms outside the class sums moved inside a sum weighted by a vector that sums
    to 1 (``c = sum_i c p_i``), or a constant spread over log weights that add up to 1
    (``c = c r + c (1 - r)``): ``(explanation, expression)`` for each way that applies."""
    out = []
    simplex = [lhs.function.base for lhs, _ in facts.constraints if isinstance(lhs, sp.Sum)]
    terms = sp.Add.make_args(expr)
    lengths = length_symbols(expr)
    sum_terms = [t for t in terms if any(isinstance(f, sp.Sum) and len(f.limits) == 1 and f.limits[0][1] == 0 and
                                        f.limits[0][2] + 1 in lengths for f in sp.Mul.make_args(t))]
    others = sp.Add(*[t for t in terms if t not in sum_terms])
    if simplex and others != 0 and sum_terms:
        index = sp.Dummy("i", integer=True, nonnegative=True)
        size = next(iter(length_symbols(expr)), None)
        if size is not None:
            body = sp.S.Zero
            for t in sum_terms:
                the_sum = next(f for f in sp.Mul.make_args(t) if isinstance(f, sp.Sum))
                body += (t / the_sum) * the_sum.function.xreplace({the_sum.limits[0][0]: index})
            body += sp.Add(*[others / len(simplex) * base[index] for base in simplex])
            names = ", ".join(str(b) for b in simplex)
            out.append((f"the terms outside the sums times sum {names} = 1, moved inside",
                        sp.Sum(body, (index, 0, size - 1))))
    groups, constant = _log_groups(expr)
    weights = list(groups)
    if len(weights) >= 2 and constant != 0 and sp.simplify(sp.Add(*weights) - 1) == 0:
        spread = sp.Add(*[w * sp.log(sp.Mul(*us) * sp.exp(constant), evaluate=False) for w, us in groups.items()])
        out.append((f"the constant {sp.sstr(constant)} = {sp.sstr(constant)} * ({' + '.join(map(sp.sstr, weights))}), "
                    "the weights of the logs adding up to 1", spread))
    return out


def _log_groups(expr) -> tuple:
    """``({weight: [arguments]}, constant)`` for ``expr = sum_u w_u log u + constant``, the logs of
    numbers counted in the constant; ``({}, expr)`` when ``expr`` is not of that form."""
    logs = sorted({lg for lg in expr.atoms(sp.log) if not lg.args[0].is_number}, key=sp.default_sort_key)
    if not logs or expr.has(sp.Sum):
        return {}, expr
    collected = sp.collect(sp.expand(expr, log=False), logs, evaluate=False)
    groups, constant = {}, sp.S.Zero
    for key, coeff in collected.items():
        if key == 1:
            constant += coeff
        elif isinstance(key, sp.log) and not coeff.has(sp.log):
            groups.setdefault(sp.factor_terms(coeff), []).append(key.args[0])
        else:
            return {}, expr
    if any(not lg.args[0].is_number for lg in constant.atoms(sp.log)):
        return {}, expr
    return groups, constant


def _class_index_ranges(expr, indices) -> dict:
    """Each free class index with its range 0..n-1 (when the claim has a symbolic n)."""
    lengths = sorted(length_symbols(expr), key=str)
    return {index: (sp.S.Zero, lengths[0] - 1) for index in indices} if len(lengths) == 1 else {}


def _nonnegative_once(expr, facts: Facts, trace: Trace, indices) -> Optional[str]:
    """One attempt on ``expr`` (no case split): the tactics of inequalities.py, then the lemma, each also
    on the absorbed forms. Only the successful attempt's steps are kept."""
    indices = _class_index_ranges(expr, indices)
    attempt = Trace()
    how = Prover(facts, attempt, indices).nonnegative(expr)
    if how:
        trace.steps.extend(attempt.steps)
        return how
    for label, variant in _absorbed(expr, facts):
        attempt = Trace()
        attempt.add(label, variant)
        how = Prover(facts, attempt, indices).nonnegative(variant)
        if how:
            trace.steps.extend(attempt.steps)
            return how
        if _lemma(variant, facts, attempt):
            trace.steps.extend(attempt.steps)
            return "lemma log x <= x - 1"
    attempt = Trace()
    if _lemma(expr, facts, attempt):
        trace.steps.extend(attempt.steps)
        return "lemma log x <= x - 1"
    return None


def _symbolic_nonnegative(difference, facts: Facts, trace: Trace) -> tuple:
    """Try to show ``difference >= 0``; returns (proved, method). Without a direct proof, split into the
    sign cases of the Max / Min / Abs arguments, then of the real scalars (at most two)."""
    expr = normalise_sums(difference)
    trace.add("sums normalised", expr)
    expr = _apply_constraints(expr, facts, trace)
    if expr.is_nonnegative:
        return True, "sign of the terms"
    indices = index_symbols(expr)
    how = _nonnegative_once(expr, facts, trace, indices)
    if how:
        return True, how
    atoms = _sign_atoms(expr)
    scalars = sorted((s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.is_real and not s.is_integer
                      and s.is_positive is None and s.is_negative is None and facts.domains.get(s) is not None
                      and facts.domains[s].lower is None and facts.domains[s].upper is None),
                     key=sp.default_sort_key)[:2]
    for split in (atoms, atoms + [s for s in scalars if s not in atoms]):
        if not split or len(split) > MAX_SIGN_ATOMS or not all(a.is_real and isinstance(a, (sp.Symbol, sp.Indexed))
                                                            for a in split):
            continue
        attempt, methods = Trace(), []
        for values, text in _sign_cases(split):
            case = expr.xreplace(values)
            attempt.add(f"case {text}", case, "->")
            how = _nonnegative_once(case, facts, attempt, indices)
            if not how:
                break
            methods.append(how)
        else:
            trace.steps.extend(attempt.steps)
            return True, f"case split on the sign of {', '.join(map(str, split))}"
    return False, "no bound found"


# --- concrete n -------------------------------------------------------------------------------

def _instantiate(expr, values: dict):
    """Substitute numbers for n and class indices, then expand the now-finite Sums."""
    return expr.xreplace({k: sp.sympify(v) for k, v in values.items()}).doit()


def _concrete_constraints(facts: Facts, size: int, lengths: set) -> dict:
    """Solve each concrete Sum constraint for its last unknown: ``y[n-1] = 1 - y[0] - ...``."""
    solution = {}
    for lhs, rhs in facts.constraints:
        equation = (_instantiate(lhs, {s: size for s in lengths | length_symbols(lhs)})
                    - _instantiate(rhs, {s: size for s in lengths | length_symbols(rhs)}))
        unknowns = sorted(equation.atoms(sp.Indexed), key=sp.default_sort_key)
        for unknown in reversed(unknowns):
            coeff = equation.diff(unknown)
            if coeff != 0 and not coeff.has(unknown) and unknown not in solution:
                solution[unknown] = guarded_expand(unknown - equation / coeff)
                break
    return solution


def _symbolic_concrete(difference, size: int, facts: Facts, trace: Trace, relation: str) -> tuple:
    lengths = length_symbols(difference)
    solution = _concrete_constraints(facts, size, lengths)
    indices = index_symbols(difference)
    cases = list(itertools.product(range(size), repeat=len(indices)))
    if len(cases) > MAX_INDEX_CASES:
        trace.add(f"too many class-index cases ({len(cases)}) for a concrete proof", difference)
        return False, f"symbolic, n = {size}"
    for values in cases:
        assignment = dict(zip(indices, values))
        expr = _instantiate(difference, {**{s: size for s in lengths}, **assignment})
        expr = expr.xreplace(solution)
        label = ", ".join(f"{s} = {v}" for s, v in assignment.items())
        trace.add(f"n = {size}{', ' + label if label else ''}: sums written out"
                  f"{', constraints solved' if solution else ''}", expr, "->")
        if relation == "==":
            ok, _ = _decide_equal(expr, trace, {})
        else:
            ok, _ = _symbolic_nonnegative(expr, facts, trace)
        if not ok:
            return False, f"symbolic, n = {size}"
    return True, f"symbolic, n = {size}" + (f", every value of {', '.join(map(str, indices))}" if indices else "")




# --- the entry point ----------------------------------------------------------------------------

def decide(claim: Claim, trace: Trace) -> tuple:
    """``(proved, method)`` for the claim by symbolic steps alone (no numbers)."""
    difference, facts = engine_view(claim)
    if claim.n is not None and not claim.symbolic_n:
        difference = difference.xreplace(_concrete_simplex(facts, claim.n))
    trace.add("derivatives evaluated; sigmoid, softplus, log_sigmoid, log1p, expm1 written with exp and log",
              difference)
    if claim.n is not None and claim.symbolic_n:
        return _symbolic_concrete(difference, claim.n, facts, trace, claim.relation)
    if claim.relation == "==":
        return _symbolic_equal(difference, facts, trace)
    return _symbolic_nonnegative(difference, facts, trace)


def _concrete_simplex(facts: Facts, size: int) -> dict:
    """``v[n-1] = 1 - v[0] - ... - v[n-2]`` for each vector of a concrete length that sums to 1."""
    solution = {}
    for base, domain in facts.domains.items():
        if isinstance(base, sp.IndexedBase) and domain.simplex and size > 1:
            solution[base[size - 1]] = 1 - sp.Add(*(base[m] for m in range(size - 1)))
    facts.concrete.update(solution)
    return solution
