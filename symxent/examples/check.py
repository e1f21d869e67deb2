"""Recompute every worked example of the source articles from the catalogue and give it a verdict.

Verdicts:

- ``agrees``: the recomputed value equals the stated one within the printed precision
  (``|computed - stated| <= 0.5 * 10**-decimals``), or a symbolic value is exactly equal, or a
  claim holds;
- ``rounding``: it does not, but rounding the document itself did explains it, and the
  explanation is recomputed (intermediate values the document rounded, or inputs it printed
  rounded); the note says which;
- ``disagrees``: the stated value does not follow from the document's own inputs; the note gives
  the computed value and the most likely cause (diagnosed, where a diagnosis applies).

Each method below is one row of a table keyed by :attr:`WorkedExample.method`.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache
from itertools import product
from typing import Callable

import sympy as sp

from ..definitions import (binary_entropy, cross_entropy, cross_entropy_loss, entropy, kl_divergence,
                           log_softmax, multilabel_bce, nll, nll_loss, one_hot, self_information, softmax,
                           softmax_cross_entropy, vector)
from ..definitions import bce as bce_loss
from ..definitions.binding import canonical
from ..definitions.symbols import c, j, n
from .documents import WORKED_EXAMPLES, WorkedExample

#: working precision (decimal digits) of every recomputation
DPS = 40
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?%?$")


@dataclass(frozen=True)
class ExampleResult:
    """One stated value with its recomputation and verdict.

    ``source`` is the article's key in :data:`~symxent.examples.documents.SOURCES`; ``passage`` is the
    article's text that states the value (verbatim) and ``translation`` its English.
    """

    source: str
    example: str
    quantity: str
    stated: str
    computed: str
    verdict: str
    note: str
    passage: str
    translation: str

    def to_dict(self) -> dict:
        return asdict(self)


# --- exact input, decimal comparison ----------------------------------------------------------

def exact(printed) -> sp.Rational:
    """A printed decimal (``"0.0660"``, ``"-1.3939"``, ``"99.9%"``) or int as an exact Rational."""
    if isinstance(printed, int) and not isinstance(printed, bool):
        return sp.Integer(printed)
    if not isinstance(printed, str) or not _DECIMAL.match(printed):
        raise ValueError(f"not a printed decimal: {printed!r}")
    if printed.endswith("%"):
        return sp.Rational(printed[:-1]) / 100
    return sp.Rational(printed)


def exact_vector(printed) -> tuple:
    return tuple(exact(v) for v in printed)


def decimals(printed: str) -> int:
    """The printed precision: the number of decimals printed."""
    return len(printed.split(".")[1]) if "." in printed else 0


def to_decimal(value) -> Decimal:
    """A numeric SymPy value to DPS significant digits."""
    return Decimal(str(sp.N(value, DPS)))


def half_unit(places: int) -> Decimal:
    """Half a unit in the last printed place: the rounding interval's half-width."""
    return Decimal(5) / Decimal(10) ** (places + 1)


def agrees_within(value, printed: str) -> bool:
    """``|value - printed| <= 0.5 * 10**-decimals(printed)``."""
    with localcontext() as ctx:
        ctx.prec = DPS + 10
        return abs(to_decimal(value) - Decimal(printed)) <= half_unit(decimals(printed))


def rounded(value, places: int) -> sp.Rational:
    """``value`` rounded to ``places`` decimals (half even), exactly."""
    with localcontext() as ctx:
        ctx.prec = DPS + 10
        return sp.Rational(str(to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)))


def fmt(value, places: int = 6) -> str:
    with localcontext() as ctx:
        ctx.prec = DPS + 10
        return str(to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def is_zero(expr) -> bool:
    """Exact zero test for the claims: logs expanded, then simplified."""
    return sp.simplify(sp.expand_log(canonical(expr), force=True)) == 0


# --- numeric methods: inputs -> exact value ----------------------------------------------------

def _log_of_softmax(x, k):
    """``torch.log(softmax(x))``: the log taken after the softmax (S1's log_output)."""
    return sp.log(softmax(x, k))


_ELEMENTWISE = {"softmax": softmax, "log_softmax": log_softmax, "log_of_softmax": _log_of_softmax}


def _rows(printed_rows) -> list:
    return [exact_vector(row) for row in printed_rows]


NUMERIC: dict = {
    "self_information": lambda a: self_information(exact(a["p"])),
    "entropy": lambda a: entropy(exact_vector(a["p"])),
    "cross_entropy": lambda a: cross_entropy(exact_vector(a["p"]), exact_vector(a["q"])),
    "one_hot_cross_entropy": lambda a: cross_entropy(one_hot(a["label"], len(a["q"])), exact_vector(a["q"])),
    "softmax": lambda a: softmax(exact_vector(a["x"]), a["k"]),
    "log_softmax": lambda a: log_softmax(exact_vector(a["x"]), a["k"]),
    "log_of_softmax": lambda a: _log_of_softmax(exact_vector(a["x"]), a["k"]),
    "nll_loss_of_log_softmax": lambda a: nll_loss([log_softmax(z) for z in _rows(a["x"])], list(a["target"])),
    "cross_entropy_loss": lambda a: cross_entropy_loss(_rows(a["x"]), list(a["target"])),
}


# --- rounding explanations: the value the document's own rounding gives ------------------------

def _rounded_informations(ex: WorkedExample):
    """Entropy as the document computed it: ``sum p_i * round(I(p_i), d)`` with its printed d."""
    places = ex.inputs.get("rounded_information_decimals")
    if places is None:
        return None
    p = exact_vector(ex.inputs["p"])
    infos = [rounded(self_information(pi), places) for pi in p]
    value = sp.Add(*(pi * info for pi, info in zip(p, infos)))
    if not agrees_within(value, ex.stated):
        return None
    terms = " + ".join(f"{s}×{fmt(info, places)}" for s, info in zip(ex.inputs["p"], infos))
    return (f"the document multiplied the informations it had rounded to {places} decimals: "
            f"{terms} = {fmt(value, decimals(ex.stated))} exactly, its stated value")


def _corner(x: tuple, k: int, h: tuple, sign: int) -> tuple:
    """The input box's corner with ``x_k`` moved by ``sign*h_k`` and every other ``x_j`` by ``-sign*h_j``."""
    return tuple(v + (sign if m == k else -sign) * hm for m, (v, hm) in enumerate(zip(x, h)))


@lru_cache(maxsize=None)
def _row_witness(x_printed: tuple, row_printed: tuple):
    """One input within the printing box of ``x`` that reproduces every printed output of the row.

    Searched on the grid ``x + {-h, 0, h}^n``; ``None`` if none there does.
    """
    x = exact_vector(x_printed)
    h = [sp.Rational(1, 2) / 10 ** decimals(v) for v in x_printed]
    for steps in sorted(product((0, 1, -1), repeat=len(x)), key=lambda s: sum(map(abs, s))):
        z = tuple(v + s * hm for v, s, hm in zip(x, steps, h))
        if all(agrees_within(_ELEMENTWISE[method](z, k), printed)
               for method, values in row_printed for k, printed in enumerate(values)):
            return tuple(s * hm for s, hm in zip(steps, h))
    return None


def _input_rounding(ex: WorkedExample):
    """The printed inputs were rounded to their printed decimals: is the stated element in reach?

    ``softmax_k`` and ``log_softmax_k`` increase with ``x_k`` and decrease with every other ``x_j``
    (``d log_softmax_k / d x_j = delta_kj - softmax_j``), so over the box ``|dx_j| <= h_j`` the
    element's exact range runs between two corners.
    """
    function = _ELEMENTWISE[ex.method]
    x_printed, k = tuple(ex.inputs["x"]), ex.inputs["k"]
    x = exact_vector(x_printed)
    h = tuple(sp.Rational(1, 2) / 10 ** decimals(v) for v in x_printed)
    low, high = (function(_corner(x, k, h, sign), k) for sign in (-1, 1))
    places = decimals(ex.stated)
    stated, half = Decimal(ex.stated), half_unit(places)
    if to_decimal(high) < stated - half or to_decimal(low) > stated + half:
        return None
    in_places = decimals(x_printed[0])
    note = (f"x_input was printed rounded to {in_places} decimals; within ±{fmt(h[0], in_places + 1)} of it "
            f"this element ranges over [{fmt(low, places + 4)}, {fmt(high, places + 4)}], which reaches "
            f"values printed as {ex.stated}")
    row = tuple((method, tuple(values)) for method, values in ex.inputs.get("row_printed", {}).items())
    if row:
        witness = _row_witness(x_printed, row)
        if witness is None:
            note += f"; no single input on the grid x + {{-h, 0, h}}^{len(x)} reproduces the whole printed row"
        else:
            shift = ", ".join(("+" if d > 0 else "") + fmt(d, in_places + 1) if d else "0" for d in witness)
            note += (f"; the one input row x + ({shift}) reproduces all {sum(len(v) for _, v in row)} "
                     f"printed values of this row")
    return note


ROUNDING: dict = {"entropy": _rounded_informations,
                  **{method: _input_rounding for method in _ELEMENTWISE}}


# --- diagnoses: the most likely cause of a disagreement ----------------------------------------

def _wrong_class_probability(ex: WorkedExample):
    """A one-hot cross-entropy whose stated value is ``-log q_m`` of another class ``m``."""
    q, label = exact_vector(ex.inputs["q"]), ex.inputs["label"]
    argmax = max(range(len(q)), key=lambda m: q[m])
    for m, qm in enumerate(q):
        if m != label and agrees_within(-sp.log(qm), ex.stated):
            which = "the prediction's largest probability (its argmax)" if m == argmax else f"class {m}'s"
            cause = (f"the stated {ex.stated} is -log q[{m}] = -log {ex.inputs['q'][m]} = {fmt(-sp.log(qm), 4)}, "
                     f"{which}, not -log q[{label}] = -log {ex.inputs['q'][label]} of the labelled class {label}")
            weights = ex.inputs.get("printed_expression_weights")
            if weights is not None:
                cause += (f": the printed expression puts the 1 on log({ex.inputs['q'][m]}) (weights "
                          f"({', '.join(weights)})) although the one-hot of label {label} it states is "
                          f"({', '.join('1' if i == label else '0' for i in range(len(q)))})")
            return cause
    return None


DIAGNOSES: dict = {"one_hot_cross_entropy": _wrong_class_probability}


# --- symbolic methods: inputs -> exact value, compared exactly with the stated closed form -------

SYMBOLIC: dict = {
    "cross_entropy_exact": lambda a: cross_entropy(exact_vector(a["p"]), exact_vector(a["q"])),
    "bce_exact": lambda a: bce_loss(exact(a["p"]), exact(a["t"])),
    "multilabel_bce_exact": lambda a: multilabel_bce(exact_vector(a["p"]), exact_vector(a["t"])),
}


def _stated_neg_logs(inputs) -> sp.Expr:
    """The stated closed form ``-log(a) - log(b) - ...`` built from its printed arguments."""
    return -sp.Add(*(sp.log(exact(a)) for a in inputs["stated_neg_logs"]))


# --- claims: inputs -> (holds, computed, evidence) --------------------------------------------

def _claim_information_zero_at_certainty(a):
    info, certain = self_information(exact(a["p"])), entropy((sp.S.One, sp.S.Zero))
    return info == 0 and certain == 0, f"I(1) = {info}", f"I(1) = {info} exactly; H((1, 0)) = {certain} too"


def _in_bits(value_nats) -> str:
    return fmt(value_nats / sp.log(2))


def _claim_binary_entropy_below_maximum(a):
    p = exact(a["p"])
    h, top = binary_entropy(p), binary_entropy(sp.S.Half)
    holds = bool(h < top)
    return (holds, f"{fmt(h)} < {fmt(top)}",
            f"H({a['p']}) = {fmt(h)} nats ({_in_bits(h)} bits), {fmt(100 * h / top, 1)}% of the maximum "
            f"log 2 = {fmt(top)} nats (p = 0.5)")


def _base_free(p) -> bool:
    """``binary_entropy(p, b) * ln b == binary_entropy(p)``: a base b > 1 scales every entropy alike."""
    b = sp.Symbol("b", positive=True)
    return is_zero(binary_entropy(p, b) * sp.log(b) - binary_entropy(p))


def _claim_binary_entropy_order(a):
    p_hi, p_lo = exact(a["p_higher"]), exact(a["p_lower"])
    h_hi, h_lo = binary_entropy(p_hi), binary_entropy(p_lo)
    holds = bool(h_lo < h_hi) and _base_free(p_hi) and _base_free(p_lo)
    return (holds, f"{fmt(h_lo)} < {fmt(h_hi)}",
            f"H({a['p_lower']}) = {fmt(h_lo)} nats < H({a['p_higher']}) = {fmt(h_hi)} nats "
            f"(in bits {_in_bits(h_lo)} < {_in_bits(h_hi)}); H_b = H / ln b (checked symbolically), so the "
            f"order holds in every base b > 1")


def _claim_cross_entropy_order(a):
    p, far, close = (exact_vector(a[key]) for key in ("p", "q_farther", "q_closer"))
    ce_far, ce_close = cross_entropy(p, far), cross_entropy(p, close)
    kl_far, kl_close = kl_divergence(p, far), kl_divergence(p, close)
    holds = bool(ce_close < ce_far) and bool(kl_close < kl_far)
    return (holds, f"{fmt(ce_close)} < {fmt(ce_far)}",
            f"H(p,q2) = {sp.sstr(ce_close)} = {fmt(ce_close)} < H(p,q1) = {sp.sstr(ce_far)} = {fmt(ce_far)}; "
            f"'closer' as KL: D(p||q2) = {fmt(kl_close)} < D(p||q1) = {fmt(kl_far)}")


def _claim_softmax_in_unit_interval(a):
    rows = _rows(a["x"])
    probs = [s for z in rows for s in softmax(z)]
    logs = [v for z in rows for v in log_softmax(z)]
    holds = all(s.is_positive and (1 - s).is_positive for s in probs) and all(v.is_negative for v in logs)
    return (holds, f"{fmt(min(probs), 4)}..{fmt(max(probs), 4)}",
            f"all 9 softmax values lie in [{fmt(min(probs))}, {fmt(max(probs))}] ⊂ (0, 1), all 9 log-softmax "
            f"values in [{fmt(min(logs))}, {fmt(max(logs))}] ⊂ (-inf, 0)")


def _claim_softmax_rows_sum_to_one(a):
    sums = [sp.cancel(sp.Add(*softmax(z))) for z in _rows(a["x"])]
    printed = [sum(Decimal(v) for v in row) for row in a["printed"]]
    return (all(s == 1 for s in sums), ", ".join(str(s) for s in sums),
            f"each row of softmax(x_input) sums to exactly 1; the printed rows sum to "
            f"{', '.join(str(s) for s in printed)} (4-decimal rounding)")


def _claim_log_of_softmax_is_log_softmax(a):
    rows = _rows(a["x"])
    holds = all(is_zero(_log_of_softmax(z, m) - log_softmax(z, m)) for z in rows for m in range(len(z)))
    return holds, "equal" if holds else "differ", "log(softmax(x)) - log_softmax(x) = 0 exactly, all 9 elements"


def _claim_nll_loss_is_mean_of_picked(a):
    logp = [log_softmax(z) for z in _rows(a["x"])]
    target = list(a["target"])
    by_hand = sp.Add(*(-lp[y] for lp, y in zip(logp, target))) / len(target)
    loss = nll_loss(logp, target)
    return (is_zero(loss - by_hand), fmt(loss, 8),
            "nll_loss(L, y) = mean over rows of -L[r][y_r] exactly (no weights)")


def _claim_ce_is_log_softmax_nll(a):
    rows, target = _rows(a["x"]), list(a["target"])
    ce = cross_entropy_loss(rows, target)
    via_nll = nll_loss([[sp.log(s) for s in softmax(z)] for z in rows], target)
    return (is_zero(ce - via_nll), fmt(ce, 8),
            f"cross_entropy_loss(x, y) - nll_loss(log(softmax(x)), y) = 0 exactly (both {fmt(ce, 8)})")


def _claim_cross_entropy_not_symmetric(a):
    p, q = exact_vector(a["p"]), exact_vector(a["q"])
    pq, qp = cross_entropy(p, q), cross_entropy(q, p)
    gap = sp.N(pq - qp, DPS)
    holds = abs(gap) > sp.Float(10) ** (10 - DPS)
    return (holds, f"{fmt(pq)} != {fmt(qp)}",
            f"p = ({', '.join(a['p'])}), q = ({', '.join(a['q'])}): H(p,q) = {fmt(pq)}, H(q,p) = {fmt(qp)}")


def _document_row_loss(z, cls, weight=None):
    """S2's formulas (1)/(2): ``-weight[class] * log(exp(x[class]) / sum_j exp(x[j]))``."""
    if isinstance(z, tuple):
        denominator = sp.Add(*(sp.exp(v) for v in z))
    else:
        denominator = sp.Sum(sp.exp(z[j]), (j, 0, n - 1))
    w = 1 if weight is None else weight[cls]
    return -w * sp.log(sp.exp(z[cls]) / denominator)


def _claim_formula_is_softmax_cross_entropy(a):
    z, w = vector("z"), (vector("w") if a["weighted"] else None)
    ours = softmax_cross_entropy(z, c, w)
    return (is_zero(_document_row_loss(z, c, w) - ours), sp.sstr(ours),
            f"the formula minus softmax_cross_entropy(z, c{', w' if w else ''}) simplifies to 0 for symbolic n")


def _claim_weighted_mean(a):
    rows, target, w = _rows(a["x"]), list(a["target"]), exact_vector(a["weight"])
    formula = sp.Add(*(_document_row_loss(z, y, w) for z, y in zip(rows, target))) / sp.Add(*(w[y] for y in target))
    ce = cross_entropy_loss(rows, target, weight=w)
    plain = cross_entropy_loss(rows, target, weight=w, reduction="sum") / len(rows)
    return (is_zero(ce - formula), fmt(ce, 8),
            f"cross_entropy_loss(weight=w, reduction='mean') = the formula = {fmt(ce)} exactly "
            f"(the plain mean of the weighted losses would be {fmt(plain)})")


def _claim_ce_row_is_log_softmax_nll(a):
    z, w = vector("z"), vector("w")
    return (is_zero(softmax_cross_entropy(z, c, w) - nll(log_softmax(z), c, w)), "equal",
            "softmax_cross_entropy(z, c, w) - nll(log_softmax(z), c, w) = 0 for symbolic n")


def _claim_ce_batch_is_log_softmax_nll(a):
    rows, target, w = _rows(a["x"]), list(a["target"]), exact_vector(a["weight"])
    logp = [log_softmax(z) for z in rows]
    gaps = []
    for reduction in ("none", "mean", "sum"):
        ce = cross_entropy_loss(rows, target, weight=w, ignore_index=a["ignore_index"], reduction=reduction)
        ours = nll_loss(logp, target, weight=w, ignore_index=a["ignore_index"], reduction=reduction)
        gaps.extend(zip(ce, ours) if reduction == "none" else [(ce, ours)])
    return (all(is_zero(x - y) for x, y in gaps), "equal",
            f"cross_entropy_loss = nll_loss(log_softmax) exactly for reduction none/mean/sum with weight "
            f"({', '.join(a['weight'])}) and ignore_index={a['ignore_index']}")


def _claim_entropy_of_two_is_binary(a):
    p = sp.Symbol("p", positive=True)
    return (is_zero(entropy((p, 1 - p)) - binary_entropy(p)), "equal",
            "entropy((p, 1 - p)) - binary_entropy(p) = 0 for symbolic p")


def _claim_kl_is_cross_entropy_minus_entropy(a):
    p, q = vector("p", positive=True), vector("q", positive=True)
    return (is_zero(kl_divergence(p, q) - (cross_entropy(p, q) - entropy(p))), "equal",
            "kl_divergence(p, q) - (cross_entropy(p, q) - entropy(p)) = 0 for symbolic n")


CLAIMS: dict = {name[len("_"):]: fn for name, fn in globals().items() if name.startswith("_claim_")}


# --- verdicts ----------------------------------------------------------------------------------

def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _numeric_result(ex: WorkedExample) -> tuple:
    value = NUMERIC[ex.method](ex.inputs)
    computed = fmt(value, decimals(ex.stated) + 4)
    if agrees_within(value, ex.stated):
        return computed, "agrees", ex.context
    explain = ROUNDING.get(ex.method)
    explanation = explain(ex) if explain else None
    if explanation:
        return computed, "rounding", _join(f"the unrounded value is {computed}", explanation, ex.context)
    diagnose = DIAGNOSES.get(ex.method)
    cause = diagnose(ex) if diagnose else None
    return computed, "disagrees", _join(f"computed {computed} from the document's own inputs",
                                        cause or "no rounding or other cause found", ex.context)


def _symbolic_result(ex: WorkedExample) -> tuple:
    value = SYMBOLIC[ex.method](ex.inputs)
    stated = _stated_neg_logs(ex.inputs)
    equal = is_zero(value - stated)
    note = _join(f"{sp.sstr(value)} = {fmt(value, 8)}", ex.context)
    return sp.sstr(value), "agrees" if equal else "disagrees", (
        note if equal else _join(f"differs from the stated {sp.sstr(stated)} = {fmt(stated, 8)}", note))


def _claim_result(ex: WorkedExample) -> tuple:
    holds, computed, evidence = CLAIMS[ex.method](ex.inputs)
    return computed, "agrees" if holds else "disagrees", _join(evidence, ex.context)


def check_example(ex: WorkedExample) -> ExampleResult:
    """Recompute one worked example from the catalogue and give its verdict."""
    if ex.method in NUMERIC:
        computed, verdict, note = _numeric_result(ex)
    elif ex.method in SYMBOLIC:
        computed, verdict, note = _symbolic_result(ex)
    elif ex.method in CLAIMS:
        computed, verdict, note = _claim_result(ex)
    else:
        raise ValueError(f"unknown recomputation method {ex.method!r} for {ex.source.key} {ex.example}")
    return ExampleResult(ex.source.key, ex.example, ex.quantity, ex.stated, computed, verdict, note, ex.passage,
                         ex.translation)


def run_examples(examples=WORKED_EXAMPLES) -> list:
    """Every worked example of the articles, recomputed, with its verdict (in source order)."""
    return [check_example(ex) for ex in examples]


def verify_checks() -> list:
    """One check per worked example: the recomputed verdict must be the recorded ``expected_verdict``."""
    from ..verify import Check

    def run(ex: WorkedExample) -> Callable[[], tuple]:
        def check() -> tuple:
            result = check_example(ex)
            detail = (f"{result.verdict} (expected {ex.expected_verdict}): "
                      f"stated {result.stated}, computed {result.computed}")
            return result.verdict == ex.expected_verdict, detail
        return check

    return [Check("examples", f"{ex.source.key} {ex.example}: {ex.quantity}", run(ex)) for ex in WORKED_EXAMPLES]
