"""The math of fused linear cross-entropy (``symxent.functional.linear_cross_entropy``), proved for a symbolic
number of classes ``n`` and features ``D``.

One row: logits ``z_m = sum_d h_d W[m, d] + b_m``. The chunked computation rests on three facts:

1. **the chain rule through the projection** (:data:`IDENTITIES`): ``d loss / d W[k, e] = g_k h_e`` and
   ``d loss / d b_k = g_k`` with ``g_k = d loss / d z_k`` evaluated at the row's logits (``h_e`` written as the
   feature sum ``sum_d delta_de h_d``, which is ``h_e`` for every feature ``e`` of the row). So a chunk of rows
   adds ``g^T h`` to the weight gradient and ``sum_rows g`` to the bias gradient, from the row kernel's ``g`` alone;
2. **the partition lemma** (``shard_sum_partition`` in :mod:`symxent.prove.vocab_parallel`): a sum over all rows
   is the sum over chunks of any sizes of the per-chunk sums, for any summand;
3. **the reduction's divisor is a constant of the chunks**: ``mean`` divides the sum of the rows by
   ``W = sum_n w[y_n]`` (counted rows), which depends on the targets only, so it is computed before the first
   chunk and each chunk's contribution is scaled by ``1 / W``. Averaging per-chunk means is *not* the mean
   (the false row ``mean_of_chunk_means_is_the_mean``).
"""
from __future__ import annotations

import sympy as sp

from ..definitions import MappedVector, c, epsilon, k, n, softmax, softmax_cross_entropy, vector
from .identity import Identity
from .prover import PROVED, REFUTED

#: number of features; the feature index of the differentiated weight and a summation index over features
D = sp.Symbol("D", integer=True, positive=True)
e = sp.Symbol("e", integer=True, nonnegative=True)
d = sp.Symbol("d", integer=True, nonnegative=True)
#: one row's input h (D features), the projection W (n x D) and the bias b (n)
h = sp.IndexedBase("h", real=True)
W = sp.IndexedBase("W", real=True)
b = sp.IndexedBase("b", real=True)
w = vector("w", positive=True)  # class weights
z = vector("z")  # logits as a free row (for the gradient g)
#: two rows' losses and their weights, in two chunks of one row each (the false row)
a1, a2 = sp.symbols("a1 a2", real=True)
w1, w2 = sp.symbols("w1 w2", positive=True)


def logits():
    """``z_m = sum_d h_d W[m, d] + b_m``: the row's logits, a vector of ``n`` classes."""
    return MappedVector(lambda m: sp.Sum(h[d] * W[m, d], (d, 0, D - 1)) + b[m], n)


def feature(f):
    """``sum_d delta_de f(d)``: feature ``e`` of a row, as a sum over the row's features."""
    return sp.Sum(sp.KroneckerDelta(d, e) * f(d), (d, 0, D - 1))


def row_gradient_at_logits(loss_of_row):
    """``g_k = d loss / d z_k`` derived for a free row ``z``, then evaluated at the projection's logits."""
    g = sp.Derivative(loss_of_row(z), z[k]).doit()
    zz = logits()
    return g.replace(lambda x: isinstance(x, sp.Indexed) and x.base == z.base, lambda x: zz[x.indices[0]])


def _smoothed(row):
    return softmax_cross_entropy(row, c, weight=w, label_smoothing=epsilon)


def _row(name, lhs, rhs, build, expected, description, **kw) -> Identity:
    return Identity(name, lhs, rhs, expected, description=description,
                    source="used by symxent.functional.linear_cross_entropy", build=build, **kw)


IDENTITIES: tuple = (
    _row("linear_logits_chain_rule",
         "d/dW[k, e] cross_entropy(h W^T + b, c)", "(softmax(h W^T + b)[k] - KroneckerDelta(k, c)) * h[e]",
         lambda: (sp.Derivative(softmax_cross_entropy(logits(), c), W[k, e]),
                  (softmax(logits(), k) - sp.KroneckerDelta(k, c)) * feature(lambda q: h[q])),
         PROVED, "the weight gradient of one row is the logit gradient times the row's input: a chunk adds g^T h"),
    _row("linear_bias_chain_rule",
         "d/db[k] cross_entropy(h W^T + b, c)", "softmax(h W^T + b)[k] - KroneckerDelta(k, c)",
         lambda: (sp.Derivative(softmax_cross_entropy(logits(), c), b[k]),
                  softmax(logits(), k) - sp.KroneckerDelta(k, c)),
         PROVED, "the bias gradient of one row is its logit gradient: a chunk adds the column sums of g"),
    # --- plausible but false ---
    _row("mean_of_chunk_means_is_the_mean",
         "(a1/w1 + a2/w2)/2", "(a1 + a2)/(w1 + w2)",
         lambda: ((a1 / w1 + a2 / w2) / 2, (a1 + a2) / (w1 + w2)),
         REFUTED, "averaging the chunks' weighted means is not the weighted mean: 1/W must be the global one"),
)

#: the chain rule with class weights and label smoothing (the row kernel's general gradient g). Proved by
#: ``tests/test_linear_cross_entropy.py``, not in the catalogue: their cross-examination writes out the derivative
#: of an n x D projection at every point (about 4 s each), beyond the catalogue's time budget.
GENERAL_ROWS: tuple = (
    _row("linear_logits_chain_rule_weighted_smoothed",
         "d/dW[k, e] cross_entropy(h W^T + b, c, weight=w, label_smoothing=epsilon)",
         "g_k(h W^T + b) * h[e], g_k = d/dz[k] cross_entropy(z, c, weight=w, label_smoothing=epsilon)",
         lambda: (sp.Derivative(_smoothed(logits()), W[k, e]),
                  row_gradient_at_logits(_smoothed) * feature(lambda q: h[q])),
         PROVED, "the same with class weights and label smoothing: the row kernel's gradient g is all a chunk needs"),
    _row("linear_bias_chain_rule_weighted_smoothed",
         "d/db[k] cross_entropy(h W^T + b, c, weight=w, label_smoothing=epsilon)",
         "g_k(h W^T + b), g_k = d/dz[k] cross_entropy(z, c, weight=w, label_smoothing=epsilon)",
         lambda: (sp.Derivative(_smoothed(logits()), b[k]), row_gradient_at_logits(_smoothed)),
         PROVED, "the bias gradient with class weights and label smoothing"),
)
