"""Classification losses, row by row and over a batch, with PyTorch's exact semantics.

Row losses (one sample, ``n`` classes, ``n`` symbolic or concrete):

- :func:`nll` — ``-w_c * logp_c``
- :func:`softmax_cross_entropy` — index target, class weights, label smoothing
- :func:`softmax_cross_entropy_prob` — probability target, class weights, label smoothing
- :func:`bce`, :func:`bce_with_logits`, :func:`multilabel_bce`, :func:`multilabel_bce_with_logits`

Batch losses (concrete batches; mirror ``torch.nn.functional``, see shared SEMANTICS.md):
:func:`cross_entropy_loss`, :func:`nll_loss`, :func:`binary_cross_entropy_loss`,
:func:`binary_cross_entropy_with_logits_loss`, :func:`kl_div_loss`.
"""
from __future__ import annotations

from typing import Sequence

import sympy as sp

from .. import semantics
from .functions import log_sigmoid
from .softmax import log_softmax
from .symbols import MappedVector, Vector, as_expr, as_vector, class_sum, common_length, length

REDUCTIONS = semantics.REDUCTIONS
#: PyTorch clamps the logs of binary_cross_entropy at this value
BCE_LOG_CLAMP = -100


# --- validation -------------------------------------------------------------------------

def check_reduction(reduction: str, allowed: Sequence[str] = REDUCTIONS) -> str:
    """PyTorch's error for an unknown reduction (:func:`symxent.semantics.check_reduction`)."""
    return semantics.check_reduction(reduction, allowed)


def check_label_smoothing(eps) -> sp.Expr:
    """``eps`` of a smoothed row loss must lie in [0, 1] (PyTorch's wording and error); a symbol is accepted
    as is. (torch's batch functions read a negative eps as 0: :func:`symxent.semantics.label_smoothing_value`.)"""
    value = as_expr(eps, "label_smoothing")
    if value.is_number and (not value.is_real or value < 0 or value > 1):
        raise semantics.label_smoothing_error(eps)
    return value


def _class_weights(weight, like: Vector) -> Vector:
    """The class-weight vector: all ones when ``weight`` is None, else checked against ``like``."""
    if weight is None:
        size = length(like)
        return tuple([sp.S.One] * size) if isinstance(size, int) else MappedVector(lambda m: sp.S.One, size)
    w = as_vector(weight, "weight")
    try:
        common_length(w, like)
    except ValueError:
        raise semantics.weight_shape_error(length(like), [length(w)]) from None
    return w


def _check_target_index(target, num_classes):
    target = as_expr(target, "target")
    if target.is_Integer and isinstance(num_classes, int) and not 0 <= int(target) < num_classes:
        raise semantics.target_out_of_bounds(target)
    return target


# --- row losses -------------------------------------------------------------------------

def nll(logp, c, weight=None) -> sp.Expr:
    r"""Negative log-likelihood of one row: :math:`-w_c \log p_c` (``logp`` are log-probabilities)."""
    logp = as_vector(logp, "input")
    w = _class_weights(weight, logp)
    c = _check_target_index(c, length(logp))
    return -w[c] * logp[c]


def softmax_cross_entropy(z, c, weight=None, label_smoothing=0) -> sp.Expr:
    r"""Cross-entropy from logits with an index target (one row).

    :math:`\ell = (1 - \varepsilon)(-w_c \log s_c) + \frac{\varepsilon}{n} \sum_i (-w_i \log s_i)`,
    :math:`\log s = \mathrm{log\_softmax}(z)`. With :math:`\varepsilon = 0` and no weight this is
    :math:`\mathrm{logsumexp}(z) - z_c`.
    """
    z = as_vector(z, "input")
    eps = check_label_smoothing(label_smoothing)
    w = _class_weights(weight, z)
    c = _check_target_index(c, length(z))
    logp = log_softmax(z)
    loss = -w[c] * logp[c]
    if eps.is_zero:
        return loss
    smoothing = -class_sum(lambda m: w[m] * logp[m], z)
    return (1 - eps) * loss + eps / length(z) * smoothing


def smoothed_target(y, label_smoothing=0) -> Vector:
    r"""The label-smoothed probability target :math:`(1 - \varepsilon) y + \varepsilon / n`."""
    y = as_vector(y, "target")
    eps = check_label_smoothing(label_smoothing)
    if eps.is_zero:
        return y
    size = length(y)
    vec = MappedVector(lambda m: (1 - eps) * y[m] + eps / size, size)
    return tuple(vec[m] for m in range(size)) if isinstance(size, int) else vec


def one_hot(c, num_classes) -> Vector:
    """The one-hot vector of class ``c``: ``KroneckerDelta(k, c)``."""
    vec = MappedVector(lambda m: sp.KroneckerDelta(m, c), num_classes)
    return tuple(vec[m] for m in range(num_classes)) if isinstance(num_classes, int) else vec


def softmax_cross_entropy_prob(z, y, weight=None, label_smoothing=0) -> sp.Expr:
    r"""Cross-entropy from logits with a probability target (one row).

    :math:`\ell = -\sum_i w_i \tilde y_i \log s_i`, :math:`\tilde y = (1 - \varepsilon) y + \varepsilon / n`.
    """
    z, y = as_vector(z, "input"), as_vector(y, "target")
    common_length(z, y)
    w = _class_weights(weight, z)
    target = smoothed_target(y, label_smoothing)
    logp = log_softmax(z)
    return -class_sum(lambda m: w[m] * target[m] * logp[m], z, y)


def _check_unit_interval(value, name):
    value = as_expr(value, name)
    if value.is_number and (value.is_real is False or value is sp.nan):
        raise semantics.TorchCheckError(f"all elements of {name} should be between 0 and 1")
    if value.is_number:
        semantics.check_unit_value(value, name)
    return value


def clamped_log(value) -> sp.Expr:
    r"""PyTorch's clamped log of binary_cross_entropy: :math:`\max(\log v, -100)` (and -100 at 0)."""
    value = as_expr(value, "input")
    if value.is_zero:
        return sp.Integer(BCE_LOG_CLAMP)
    return sp.Max(sp.log(value), BCE_LOG_CLAMP)


def bce(p, t, weight=1) -> sp.Expr:
    r"""Binary cross-entropy on a probability: :math:`-w (t \max(\log p, -100) + (1 - t) \max(\log(1 - p), -100))`."""
    p = _check_unit_interval(p, "input")
    t = _check_unit_interval(t, "target")
    return -as_expr(weight, "weight") * (t * clamped_log(p) + (1 - t) * clamped_log(1 - p))


def bce_with_logits(x, t, pos_weight=1, weight=1) -> sp.Expr:
    r"""BCE from a logit: :math:`w ((1 - t) x - (1 + (p_w - 1) t) \log\sigma(x))`.

    Without ``pos_weight`` this is :math:`\mathrm{softplus}(x) - t x`.
    """
    x, t, pw, w = (as_expr(v, name) for v, name in ((x, "input"), (t, "target"), (pos_weight, "pos_weight"),
                                                        (weight, "weight")))
    return w * ((1 - t) * x - (1 + (pw - 1) * t) * log_sigmoid(x))


def multilabel_bce(p, t, weight=None) -> sp.Expr:
    r"""Multi-label BCE of one sample: :math:`\sum_i \mathrm{bce}(p_i, t_i)` (document 003)."""
    p, t = as_vector(p, "input"), as_vector(t, "target")
    w = _class_weights(weight, p)
    return class_sum(lambda m: bce(p[m], t[m], w[m]), p, t)


def multilabel_bce_with_logits(x, t, pos_weight=None, weight=None) -> sp.Expr:
    r"""Multi-label BCE from logits: :math:`\sum_i \mathrm{bce\_with\_logits}(x_i, t_i, p_{w,i}, w_i)`."""
    x, t = as_vector(x, "input"), as_vector(t, "target")
    w = _class_weights(weight, x)
    pw = _class_weights(pos_weight, x)
    return class_sum(lambda m: bce_with_logits(x[m], t[m], pw[m], w[m]), x, t)


# --- batch losses (PyTorch reductions) ---------------------------------------------------

def _rows(batch, name="input") -> list:
    rows = [as_vector(r, f"{name}[{idx}]") for idx, r in enumerate(batch)]
    if rows:
        common_length(*rows)
    return rows


def _flat(values) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)) or (hasattr(v, "__len__") and not isinstance(v, (str, bytes, sp.Basic))):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def reduce(losses: Sequence[sp.Expr], reduction: str, denominator=None):
    """``none``: the tuple of losses; ``sum``: their sum; ``mean``: sum / denominator (count by default)."""
    check_reduction(reduction)
    losses = tuple(as_expr(v, "loss") for v in losses)
    if reduction == "none":
        return losses
    total = sp.Add(*losses)
    if reduction == "sum":
        return total
    denominator = sp.Integer(len(losses)) if denominator is None else as_expr(denominator, "denominator")
    return sp.nan if denominator.is_zero else total / denominator


def _is_index_target(target) -> bool:
    return all(isinstance(y, int) or (isinstance(y, sp.Basic) and y.is_Integer) for y in target)


def _check_batch(rows, target) -> list:
    target = list(target)
    if len(target) != len(rows):
        raise ValueError(f"Expected input batch_size ({len(rows)}) to match target batch_size ({len(target)}).")
    return target


def _reduce_index_targets(rows, target, weight, ignore_index, reduction, row_loss):
    """Apply ``row_loss(row, y)`` to every non-ignored row and reduce the PyTorch way:
    ``mean`` divides by the summed class weight ``W = sum w[y_n]`` of the non-ignored rows."""
    if not rows:
        return reduce([], reduction, 0)
    w = _class_weights(weight, rows[0])
    losses, total_weight = [], sp.S.Zero
    for row, y in zip(rows, target):
        if int(y) == ignore_index:
            losses.append(sp.S.Zero)
            continue
        losses.append(row_loss(row, int(y)))
        total_weight += w[int(y)]
    return reduce(losses, reduction, total_weight)


def cross_entropy_loss(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """``torch.nn.functional.cross_entropy`` on a concrete batch of rows (logits).

    Index targets: ``mean`` divides by the summed weight of the non-ignored targets, and the
    smoothing term is weighted and divided the same way. Probability targets: ``mean``
    divides by the number of rows; ``ignore_index >= 0`` is an error.
    """
    check_reduction(reduction)
    rows = _rows(input)
    target = _check_batch(rows, target)
    if _is_index_target(target):
        return _reduce_index_targets(
            rows, target, weight, ignore_index, reduction,
            lambda z, y: softmax_cross_entropy(z, y, weight, label_smoothing),
        )
    if ignore_index >= 0:
        raise semantics.IGNORE_INDEX_WITH_PROBABILITIES
    losses = [softmax_cross_entropy_prob(z, y, weight, label_smoothing) for z, y in zip(rows, target)]
    return reduce(losses, reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """``torch.nn.functional.nll_loss`` on a concrete batch of log-probability rows."""
    check_reduction(reduction)
    rows = _rows(input)
    target = _check_batch(rows, target)
    return _reduce_index_targets(rows, target, weight, ignore_index, reduction, lambda lp, y: nll(lp, y, weight))


def binary_cross_entropy_loss(input, target, weight=None, reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy``: elementwise, ``mean`` over all elements."""
    p, t = _flat(input), _flat(target)
    if len(p) != len(t):
        raise ValueError(f"Using a target size ({len(t)}) that is different to the input size ({len(p)}) is deprecated.")
    w = [1] * len(p) if weight is None else _flat(weight)
    return reduce([bce(a, b, c) for a, b, c in zip(p, t, w)], reduction)


def binary_cross_entropy_with_logits_loss(input, target, weight=None, pos_weight=None, reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy_with_logits`` on a concrete batch of rows."""
    check_reduction(reduction)
    rows, targets = _rows(input), _rows(target, "target")
    losses = []
    for r, (x, t) in enumerate(zip(rows, targets)):
        common_length(x, t)
        w = _class_weights(None if weight is None else (weight[r] if _is_nested(weight) else weight), x)
        pw = _class_weights(pos_weight, x)
        losses.extend(bce_with_logits(x[m], t[m], pw[m], w[m]) for m in range(length(x)))
    return reduce(losses, reduction)


def _is_nested(values) -> bool:
    return len(values) > 0 and isinstance(values[0], (list, tuple))


def kl_div_loss(input, target, reduction="mean", log_target=False):
    """``torch.nn.functional.kl_div``: pointwise ``target * (log target - input)`` (input: log-probs)."""
    check_reduction(reduction, REDUCTIONS + ("batchmean",))
    rows, targets = _rows(input), _rows(target, "target")
    terms = []
    for logq, p in zip(rows, targets):
        common_length(logq, p)
        for m in range(length(p)):
            if log_target:
                terms.append(sp.exp(p[m]) * (p[m] - logq[m]))
            else:
                terms.append(sp.S.Zero if p[m].is_zero else p[m] * (sp.log(p[m]) - logq[m]))
    if reduction == "batchmean":
        return reduce(terms, "sum") / len(rows)
    return reduce(terms, reduction)
