"""The identity catalogue: true identities (proved) and plausible false ones (refuted), as data.

One :class:`Identity` per row: a stable ``name``, the printable ``lhs`` / ``rhs``, the verdict
``expected`` from the prover, assumptions, and ``build`` (a callable returning the two SymPy
sides). The code generator uses a rewrite only when its identity here is proved
(:func:`is_proved`); the CLI (``symxent identities``) and ``symxent verify`` run every row.
"""
from __future__ import annotations

import functools
import sympy as sp
from sympy.codegen.cfunctions import log1p

from ..definitions import (MappedVector, bce, bce_with_logits, binary_entropy, c, class_sum, cross_entropy, epsilon,
                           cross_entropy_loss, entropy, i, j, k, kl_divergence, l, log_sigmoid, log_softmax,
                           logsumexp, multilabel_bce_with_logits, n, nll, one_hot, sigmoid, softmax,
                           softmax_cross_entropy, softmax_cross_entropy_prob, softplus, stable_softplus, t,
                           vector, x)
from . import identity as _row
from .identity import Identity, IdentityResult
from .prover import PROVED, REFUTED

# --- the symbols the catalogue talks about -----------------------------------------------------

z = vector("z")  # logits
y = vector("y")  # a probability target (sums to 1 where the row says so)
p = vector("p", positive=True)  # probability vectors
q = vector("q", positive=True)
w = vector("w", positive=True)  # class weights
u, v = vector("u"), vector("v")  # two rows of a concrete batch
a, b = sp.symbols("a b", real=True)
eps = epsilon  # label smoothing (definitions' symbol), in [0, 1]
pw = sp.Symbol("pos_weight", positive=True)
r = sp.Symbol("r", positive=True)  # a probability in (0, 1)

Y_SUMS_TO_ONE = sp.Eq(sp.Sum(y[i], (i, 0, n - 1)), 1)
P_SUMS_TO_ONE = sp.Eq(sp.Sum(p[i], (i, 0, n - 1)), 1)
Q_SUMS_TO_ONE = sp.Eq(sp.Sum(q[i], (i, 0, n - 1)), 1)
EPS_BELOW_ONE = eps < 1
R_BELOW_ONE = r < 1


def _shifted(vec, shift, scale=1):
    """The vector ``scale * vec + shift`` (symbolic length)."""
    return MappedVector(lambda m: scale * vec[m] + shift, vec.length)


def _sum_exp(vec, shift=0):
    return class_sum(lambda m: sp.exp(vec[m] - shift), vec, index=j)


def _megatron_smoothing(logits, target, eps_):
    """Megatron-LM's label smoothing: PyTorch's formula with eps replaced by eps * n / (n - 1)."""
    return softmax_cross_entropy(logits, target, label_smoothing=eps_ * n / (n - 1))


def _weighted_batch(reduction):
    rows = [tuple(u[m] for m in range(3)), tuple(v[m] for m in range(3))]
    return cross_entropy_loss(rows, [0, 2], weight=tuple(w[m] for m in range(3)), reduction=reduction)


# --- the catalogue -----------------------------------------------------------------------------

def _true(name, lhs, rhs, build, description, source="", **kw) -> Identity:
    return Identity(name, lhs, rhs, PROVED, description=description, source=source, build=build, **kw)


def _false(name, lhs, rhs, build, description, source="", **kw) -> Identity:
    return Identity(name, lhs, rhs, REFUTED, description=description, source=source, build=build, **kw)


def _formula(name, lhs, rhs, expected, description, source, assumptions=(), relation="==") -> Identity:
    """A row stated as formulas, proved from the strings themselves (natural domains included)."""
    def build():
        from .parse import parse_formula
        return parse_formula(lhs, names=NAMES), parse_formula(rhs, names=NAMES)
    return Identity(name, lhs, rhs, expected, tuple(assumptions), description=description, source=source,
                    relation=relation, build=build, formula=True)


# the books and papers the rows come from
COVER_THOMAS = "Cover & Thomas, Elements of Information Theory, 2nd ed. (2006)"
GOODFELLOW = "Goodfellow, Bengio & Courville, Deep Learning (2016)"
BISHOP = "Bishop, Pattern Recognition and Machine Learning (2006)"
BOYD = "Boyd & Vandenberghe, Convex Optimization (2004)"
LIN_JS = "Lin, Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory 37(1) (1991)"
HINTON_KD = "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network (2015), sec. 2"
SZEGEDY_LS = "Szegedy et al., Rethinking the Inception Architecture for Computer Vision (2016), sec. 7"
MULLER_LS = "Mueller, Kornblith & Hinton, When Does Label Smoothing Help? (NeurIPS 2019)"
LIN_FOCAL = "Lin et al., Focal Loss for Dense Object Detection (ICCV 2017), sec. 3"
JURAFSKY = "Jurafsky & Martin, Speech and Language Processing, 3rd ed. draft, ch. 3 (perplexity)"
PYTORCH = "PyTorch documentation, torch.nn.functional"


IDENTITIES: tuple = (
    # --- logsumexp and softmax: the rewrites the code generator relies on ---
    _true("logsumexp_shift", "logsumexp(z)", "a + log(sum(exp(z[j] - a), j))",
          lambda: (logsumexp(z), a + sp.log(_sum_exp(z, a))),
          "logsumexp may be computed after subtracting any real a; a = max(z) is the stable max-shift",
          "Goodfellow, Bengio, Courville, Deep Learning (2016), sec. 4.1; used by codegen (stable logsumexp)"),
    _true("logsumexp_translation", "log(sum(exp(z[j] + a), j))", "logsumexp(z) + a",
          lambda: (logsumexp(_shifted(z, a)), logsumexp(z) + a),
          "adding a constant to every logit shifts logsumexp by it", "PyTorch documentation, torch.nn.functional"),
    _true("softmax_via_logsumexp", "exp(z[k]) / sum(exp(z[j]), j)", "exp(z[k] - logsumexp(z))",
          lambda: (softmax(z, k), sp.exp(z[k] - logsumexp(z))),
          "softmax computed from the stable logsumexp", "used by codegen"),
    _true("softmax_shift_invariance", "exp(z[k] + a) / sum(exp(z[j] + a), j)", "softmax(z)[k]",
          lambda: (softmax(_shifted(z, a), k), softmax(z, k)),
          "softmax does not change when a constant is added to every logit"),
    _true("log_softmax_def", "log(softmax(z)[k])", "z[k] - logsumexp(z)",
          lambda: (sp.log(softmax(z, k)), z[k] - logsumexp(z)),
          "log-softmax without a division or a log of a small number", "used by codegen"),
    _true("ce_is_lse_minus_target", "-log(softmax(z)[c])", "logsumexp(z) - z[c]",
          lambda: (-sp.log(softmax(z, c)), logsumexp(z) - z[c]),
          "cross-entropy of an index target from logits", "PyTorch documentation, torch.nn.functional; used by codegen"),
    _true("ce_equals_nll_of_log_softmax", "softmax_cross_entropy(z, c, weight=w)", "nll(log_softmax(z), c, weight=w)",
          lambda: (softmax_cross_entropy(z, c, weight=w), nll(log_softmax(z), c, weight=w)),
          "F.cross_entropy is F.nll_loss after F.log_softmax (with class weights)", "PyTorch documentation, torch.nn.functional"),
    _true("exp_add_log", "exp(a + b*log(r))", "exp(a)*r**b",
          lambda: (sp.exp(a + b * sp.log(r)), sp.exp(a) * r**b),
          "exp(a + b log x) = exp(a) x^b for x > 0: softmax as exp(z_k - m) / S after the max-shift",
          "used by codegen"),
    _true("sum_linearity", "sum(a*u[i] + v[i], i)", "a*sum(u[i], i) + sum(v[i], i)",
          lambda: (class_sum(lambda m: a * u[m] + v[m], u), a * class_sum(lambda m: u[m], u)
                   + class_sum(lambda m: v[m], v)),
          "a class-axis sum is linear: row scalars move out of the reduction", "used by codegen"),
    _true("sum_shift", "sum(u[i]*z[i] + v[i], i)", "sum(u[i]*(z[i] - a) + v[i], i) + a*sum(u[i], i)",
          lambda: (class_sum(lambda m: u[m] * z[m] + v[m], u),
                   class_sum(lambda m: u[m] * (z[m] - a) + v[m], u) + a * class_sum(lambda m: u[m], u)),
          "a sum linear in the logits may accumulate the shifted logits z - a (a = max(z): no cancellation "
          "of large terms in label smoothing)", "used by codegen"),
    _true("softmax_sums_to_one", "sum(softmax(z)[i], i)", "1",
          lambda: (class_sum(lambda m: softmax(z, m), z), sp.S.One),
          "softmax is a probability vector"),
    # --- gradients ---
    _true("logsumexp_grad_is_softmax", "diff(logsumexp(z), z[k])", "softmax(z)[k]",
          lambda: (sp.Derivative(logsumexp(z), z[k]), softmax(z, k)),
          "the gradient of logsumexp is softmax"),
    _true("ce_grad_is_softmax_minus_onehot", "diff(softmax_cross_entropy(z, c), z[k])", "softmax(z)[k] - delta(k, c)",
          lambda: (sp.Derivative(softmax_cross_entropy(z, c), z[k]), softmax(z, k) - sp.KroneckerDelta(k, c)),
          "gradient of cross-entropy with an index target", "PyTorch documentation, torch.nn.functional; used by codegen"),
    _true("ce_prob_grad_is_softmax_minus_target", "diff(softmax_cross_entropy_prob(z, y), z[k])",
          "softmax(z)[k] - y[k]",
          lambda: (sp.Derivative(softmax_cross_entropy_prob(z, y), z[k]), softmax(z, k) - y[k]),
          "gradient of cross-entropy with a probability target summing to 1", "PyTorch documentation, torch.nn.functional; used by codegen",
          assumptions=(Y_SUMS_TO_ONE,)),
    _true("label_smoothing_grad", "diff(softmax_cross_entropy(z, c, label_smoothing=eps), z[k])",
          "softmax(z)[k] - (1 - eps)*delta(k, c) - eps/n",
          lambda: (sp.Derivative(softmax_cross_entropy(z, c, label_smoothing=eps), z[k]),
                   softmax(z, k) - (1 - eps) * sp.KroneckerDelta(k, c) - eps / n),
          "gradient of label-smoothed cross-entropy (PyTorch's eps / n)", "PyTorch documentation, torch.nn.functional; used by codegen",
          assumptions=(EPS_BELOW_ONE,)),
    _true("logsumexp_hessian", "diff(diff(logsumexp(z), z[k]), z[l])",
          "softmax(z)[k]*delta(k, l) - softmax(z)[k]*softmax(z)[l]",
          lambda: (sp.Derivative(logsumexp(z), z[k], z[l]),
                   softmax(z, k) * sp.KroneckerDelta(k, l) - softmax(z, k) * softmax(z, l)),
          "Hessian of logsumexp: diag(s) - s s^T", "PyTorch documentation, torch.nn.functional"),
    # --- label smoothing ---
    _true("label_smoothing_index_equals_prob_target", "softmax_cross_entropy(z, c, weight=w, label_smoothing=eps)",
          "-sum(w[i]*((1 - eps)*delta(i, c) + eps/n)*log_softmax(z)[i], i)",
          lambda: (softmax_cross_entropy(z, c, weight=w, label_smoothing=eps),
                   softmax_cross_entropy_prob(z, one_hot(c, n), weight=w, label_smoothing=eps)),
          "an index target smoothed by eps is the probability target (1 - eps) onehot + eps/n (none, sum)",
          "PyTorch documentation, torch.nn.functional", assumptions=(EPS_BELOW_ONE,)),
    # --- information theory ---
    _true("kl_is_ce_minus_entropy", "kl_divergence(p, q)", "cross_entropy(p, q) - entropy(p)",
          lambda: (kl_divergence(p, q), cross_entropy(p, q) - entropy(p)),
          "KL divergence is cross-entropy minus entropy", "PyTorch documentation, torch.nn.functional"),
    _true("ce_self_is_entropy", "cross_entropy(p, p)", "entropy(p)", lambda: (cross_entropy(p, p), entropy(p)),
          "the cross-entropy of a distribution with itself is its entropy", "PyTorch documentation, torch.nn.functional"),
    _true("gibbs_inequality", "kl_divergence(p, q)", "0", lambda: (kl_divergence(p, q), sp.S.Zero),
          "Gibbs' inequality KL >= 0 for probability vectors, via log x <= x - 1", "PyTorch documentation, torch.nn.functional",
          assumptions=(P_SUMS_TO_ONE, Q_SUMS_TO_ONE), relation=">="),
    _true("cross_entropy_at_least_entropy", "cross_entropy(p, q)", "entropy(p)",
          lambda: (cross_entropy(p, q), entropy(p)),
          "cross-entropy is never below entropy (Gibbs)", "", assumptions=(P_SUMS_TO_ONE, Q_SUMS_TO_ONE),
          relation=">="),
    _true("entropy_base_change", "entropy(p, 2)", "entropy(p) / log(2)",
          lambda: (entropy(p, 2), entropy(p) / sp.log(2)),
          "entropy in bits is entropy in nats divided by ln 2", "PyTorch documentation, torch.nn.functional"),
    _true("cross_entropy_base_change", "cross_entropy(p, q, 10)", "cross_entropy(p, q) / log(10)",
          lambda: (cross_entropy(p, q, 10), cross_entropy(p, q) / sp.log(10)),
          "cross-entropy in base 10 is cross-entropy in nats divided by ln 10", "the source documents of the worked examples (symxent examples)"),
    _true("binary_entropy_derivative", "diff(binary_entropy(r), r)", "log((1 - r)/r)",
          lambda: (sp.Derivative(binary_entropy(r), r), sp.log((1 - r) / r)),
          "derivative of the binary entropy (nats), 0 < r < 1", "", assumptions=(R_BELOW_ONE,)),
    # --- sigmoid, softplus, binary cross-entropy ---
    _true("softplus_stable", "softplus(x)", "Max(x, 0) + log(1 + exp(-Abs(x)))",
          lambda: (softplus(x), stable_softplus(x)),
          "overflow-free softplus", "used by codegen"),
    _true("log_sigmoid_stable", "log(sigmoid(x))", "Min(x, 0) - log(1 + exp(-Abs(x)))",
          lambda: (sp.log(sigmoid(x)), sp.Min(x, 0) - sp.log(1 + sp.exp(-sp.Abs(x)))),
          "overflow-free log-sigmoid", "used by codegen"),
    _true("log1p_def", "log(1 + x)", "log1p(x)", lambda: (sp.log(1 + x), log1p(x)),
          "log1p(x) is log(1 + x), computed without rounding 1 + x (x > -1): log(1 - p) = log1p(-p)",
          "used by codegen"),
    _true("exp_as_exp2", "exp(x)", "2**(x/log(2))", lambda: (sp.exp(x), 2 ** (x / sp.log(2))),
          "e^x as a power of two, log2(e) = 1/log(2): the GPU's MUFU.EX2 computes 2^y", "used by codegen"),
    _true("sigmoid_via_exp", "sigmoid(x)", "exp(x) / (1 + exp(x))",
          lambda: (sigmoid(x), sp.exp(x) / (1 + sp.exp(x))),
          "the form of sigmoid used for x < 0 (no overflow of exp(-x))", "used by codegen"),
    _true("sigmoid_symmetry", "1 - sigmoid(x)", "sigmoid(-x)", lambda: (1 - sigmoid(x), sigmoid(-x)),
          "1 - sigma(x) = sigma(-x)"),
    _true("softplus_difference", "softplus(x) - softplus(-x)", "x", lambda: (softplus(x) - softplus(-x), x),
          "softplus(x) - softplus(-x) = x"),
    _true("log_sigmoid_is_minus_softplus", "log_sigmoid(x)", "-softplus(-x)",
          lambda: (log_sigmoid(x), -softplus(-x)), "log sigma(x) = -softplus(-x)", "used by codegen"),
    _true("sigmoid_derivative", "diff(sigmoid(x), x)", "diff(1 / (1 + exp(-x)), x)",
          lambda: (sp.Derivative(sigmoid(x), x), sp.Derivative(1 / (1 + sp.exp(-x)), x)),
          "sigmoid's fdiff, sigma (1 - sigma), agrees with differentiating its formula"),
    _true("bce_with_logits_is_softplus", "bce_with_logits(x, t)", "softplus(x) - t*x",
          lambda: (bce_with_logits(x, t), softplus(x) - t * x),
          "BCE with logits is softplus(x) - t x", "PyTorch documentation, torch.nn.functional; used by codegen"),
    _true("bce_of_sigmoid_is_bce_with_logits", "-(t*log(sigmoid(x)) + (1 - t)*log(1 - sigmoid(x)))",
          "bce_with_logits(x, t)",
          lambda: (-(t * sp.log(sigmoid(x)) + (1 - t) * sp.log(1 - sigmoid(x))), bce_with_logits(x, t)),
          "BCE of sigmoid(x) (without PyTorch's log clamp) equals BCE with logits", "PyTorch documentation, torch.nn.functional"),
    _true("bce_is_two_class_ce", "bce_with_logits(x, t)", "softmax_cross_entropy_prob([0, x], [1 - t, t])",
          lambda: (bce_with_logits(x, t), softmax_cross_entropy_prob((sp.S.Zero, x), (1 - t, t))),
          "binary cross-entropy is 2-class softmax cross-entropy with logits [0, x]", "PyTorch documentation, torch.nn.functional"),
    _true("bce_with_logits_grad", "diff(bce_with_logits(x, t), x)", "sigmoid(x) - t",
          lambda: (sp.Derivative(bce_with_logits(x, t), x), sigmoid(x) - t),
          "gradient of BCE with logits", "PyTorch documentation, torch.nn.functional; used by codegen"),
    _true("bce_with_logits_pos_weight_grad", "diff(bce_with_logits(x, t, pos_weight), x)",
          "(1 + (pos_weight - 1)*t)*sigmoid(x) - pos_weight*t",
          lambda: (sp.Derivative(bce_with_logits(x, t, pw), x), (1 + (pw - 1) * t) * sigmoid(x) - pw * t),
          "gradient of BCE with logits and pos_weight", "PyTorch documentation, torch.nn.functional; used by codegen"),
    _true("multilabel_bce_is_sum_of_softplus", "multilabel_bce_with_logits(z, y)",
          "sum(softplus(z[i]) - y[i]*z[i], i)",
          lambda: (multilabel_bce_with_logits(z, y), class_sum(lambda m: softplus(z[m]) - y[m] * z[m], z)),
          "multi-label BCE with logits, summed over n labels"),
    # --- plausible but false ---
    _false("sympy_logsumexp_2terms_opt", "log(exp(a) + exp(b))",
           "max(a, b) + log1p(exp(min(a, b)))",
           lambda: (sp.log(sp.exp(a) + sp.exp(b)), sp.Max(a, b) + sp.log(1 + sp.exp(sp.Min(a, b)))),
           "SymPy 1.14's logsumexp_2terms_opt: max(a, b) + log1p(exp(min(a, b))), the exponent not shifted by the max "
           "(right: log1p(exp(min - max)))", "sympy.codegen.rewriting (1.14)"),
    _false("kl_symmetric", "kl_divergence(p, q)", "kl_divergence(q, p)",
           lambda: (kl_divergence(p, q), kl_divergence(q, p)),
           "KL divergence is not symmetric", assumptions=(P_SUMS_TO_ONE, Q_SUMS_TO_ONE)),
    _false("cross_entropy_symmetric", "cross_entropy(p, q)", "cross_entropy(q, p)",
           lambda: (cross_entropy(p, q), cross_entropy(q, p)),
           "cross-entropy is not symmetric", assumptions=(P_SUMS_TO_ONE, Q_SUMS_TO_ONE)),
    _false("megatron_smoothing_equals_pytorch", "softmax_cross_entropy(z, c, label_smoothing=eps*n/(n - 1))",
           "softmax_cross_entropy(z, c, label_smoothing=eps)",
           lambda: (_megatron_smoothing(z, c, eps), softmax_cross_entropy(z, c, label_smoothing=eps)),
           "Megatron-LM smooths with eps*C/(C-1), PyTorch with eps/C: not the same loss",
           "PyTorch documentation, torch.nn.functional", assumptions=(eps < sp.Rational(1, 2),)),
    _false("softmax_scale_invariant", "exp(2*z[k]) / sum(exp(2*z[j]), j)", "softmax(z)[k]",
           lambda: (softmax(_shifted(z, 0, 2), k), softmax(z, k)),
           "softmax is shift invariant, not scale invariant (temperature matters)"),
    _false("weighted_mean_divides_by_count", "cross_entropy_loss([u, v], [0, 2], weight=w, reduction='mean')",
           "cross_entropy_loss([u, v], [0, 2], weight=w, reduction='sum') / 2",
           lambda: (_weighted_batch("mean"), _weighted_batch("sum") / 2),
           "with class weights, mean divides by the sum of the targets' weights, not by N (3 classes)",
           "PyTorch documentation, torch.nn.functional"),
    _false("sigmoid_multilabel_equals_softmax", "sigmoid(z[k])", "softmax(z)[k]",
           lambda: (sigmoid(z[k]), softmax(z, k)),
           "independent sigmoids (multi-label) are not softmax (multi-class)", "the source documents of the worked examples (symxent examples)"),
    _false("entropy_bits_times_ln2", "entropy(p, 2)", "entropy(p) * log(2)",
           lambda: (entropy(p, 2), entropy(p) * sp.log(2)),
           "changing base divides by ln 2; it does not multiply", assumptions=(P_SUMS_TO_ONE,)),
    _false("bce_clamped_equals_bce_with_logits", "bce(sigmoid(x), t)", "bce_with_logits(x, t)",
           lambda: (bce(sigmoid(x), t), bce_with_logits(x, t)),
           "PyTorch clamps the logs of binary_cross_entropy at -100: it differs from the logits form for |x| > 100",
           "PyTorch documentation, torch.nn.functional", assumptions=(t >= 0, t <= 1)),
)


# --- what textbooks state: inequalities (proved for every n) ---------------------------------------

TEXTBOOK_INEQUALITIES: tuple = (
    _formula("logsumexp_at_least_each_logit", "logsumexp(z)", "z[k]", PROVED,
             "logsumexp is a soft maximum: at least every logit", f"{BOYD}, sec. 3.1.5", relation=">="),
    _formula("logsumexp_at_least_max", "logsumexp(z)", "max(z)", PROVED,
             "logsumexp is at least the largest logit", f"{BOYD}, sec. 3.1.5; {GOODFELLOW}, sec. 4.1",
             relation=">="),
    _formula("logsumexp_at_most_max_plus_log_n", "logsumexp(z)", "max(z) + log(n)", PROVED,
             "logsumexp exceeds the largest logit by at most log n", f"{BOYD}, sec. 3.1.5", relation="<="),
    _formula("entropy_nonnegative", "entropy(p)", "0", PROVED, "entropy is never negative",
             f"{COVER_THOMAS}, Lemma 2.1.1", relation=">="),
    _formula("entropy_at_most_log_n", "entropy(p)", "log(n)", PROVED,
             "entropy is at most log n, the entropy of the uniform distribution", f"{COVER_THOMAS}, Theorem 2.6.4",
             relation="<="),
    _formula("cross_entropy_loss_nonnegative", "ce(z, c)", "0", PROVED, "cross-entropy from logits is never negative",
             f"{GOODFELLOW}, sec. 6.2.2.3", relation=">="),
    _formula("soft_target_cross_entropy_nonnegative", "softmax_cross_entropy_prob(z, y)", "0", PROVED,
             "cross-entropy with a probability target is never negative", f"{GOODFELLOW}, sec. 6.2.2.3",
             relation=">="),
    _formula("log_softmax_nonpositive", "log_softmax(z)[k]", "0", PROVED, "log-probabilities are at most 0",
             f"{GOODFELLOW}, sec. 6.2.2.3", relation="<="),
    _formula("softmax_at_most_one", "softmax(z)[k]", "1", PROVED, "a softmax output is a probability",
             f"{BISHOP}, sec. 4.3.4", relation="<="),
    _formula("softplus_at_least_relu", "softplus(x)", "max(x, 0)", PROVED, "softplus is a smooth upper bound of ReLU",
             f"{GOODFELLOW}, sec. 3.10", relation=">="),
    _formula("jensen_shannon_nonnegative", "js(p, q)", "0", PROVED, "the Jensen-Shannon divergence is never negative",
             f"{LIN_JS}", relation=">="),
    _formula("jensen_shannon_at_most_log_2", "js(p, q)", "log(2)", PROVED, "the Jensen-Shannon divergence is at most log 2",
             f"{LIN_JS}, Theorem 4", relation="<="),
    _formula("binary_entropy_nonnegative", "binary_entropy(r)", "0", PROVED, "binary entropy is never negative",
             f"{COVER_THOMAS}, sec. 2.1", relation=">="),
    _formula("binary_entropy_at_most_log_2", "binary_entropy(r)", "log(2)", PROVED, "binary entropy is at most one bit",
             f"{COVER_THOMAS}, sec. 2.1 (Example 2.1.1)", relation="<="),
    _formula("bce_with_logits_nonnegative", "bce_with_logits(x, t)", "0", PROVED,
             "BCE with logits is never negative for a target in [0, 1]", f"{BISHOP}, sec. 4.3.2", relation=">="),
)

# --- what textbooks state: identities ----------------------------------------------------------

TEXTBOOK_IDENTITIES: tuple = (
    _formula("two_logit_cross_entropy_is_softplus", "ce([a, b], 0)", "softplus(b - a)", PROVED,
             "cross-entropy of two logits, target 0, is softplus of their difference", f"{BISHOP}, sec. 4.2, eq. 4.57"),
    _formula("two_logit_soft_target_is_bce_with_logits", "softmax_cross_entropy_prob([a, b], [1 - t, t])",
             "bce_with_logits(b - a, t)", PROVED,
             "two-class cross-entropy with a probability target is BCE with logits of the difference",
             f"{BISHOP}, sec. 4.2-4.3"),
    _formula("two_class_softmax_is_sigmoid", "softmax([a, b])[1]", "sigmoid(b - a)", PROVED,
             "softmax over two classes is the logistic sigmoid of the difference", f"{BISHOP}, sec. 4.2, eq. 4.57"),
    _formula("sigmoid_via_tanh", "sigmoid(x)", "(1 + tanh(x/2))/2", PROVED, "sigmoid is a shifted, scaled tanh",
             f"{GOODFELLOW}, sec. 3.10"),
    _formula("logit_of_sigmoid", "log(sigmoid(x)/(1 - sigmoid(x)))", "x", PROVED, "the log-odds of sigmoid(x) is x",
             f"{BISHOP}, sec. 4.2, eq. 4.58"),
    _formula("log_sigmoid_derivative", "diff(log_sigmoid(x), x)", "sigmoid(-x)", PROVED,
             "d/dx log sigma(x) = sigma(-x) = 1 - sigma(x)", f"{BISHOP}, sec. 4.2, eq. 4.88"),
    _formula("bce_with_logits_symmetry", "bce_with_logits(-x, 1 - t)", "bce_with_logits(x, t)", PROVED,
             "flipping the logit and the label leaves BCE unchanged", PYTORCH),
    _formula("log_exp_temperature", "log(exp(x/T))", "x/T", PROVED, "log exp is the identity on reals, e.g. x / T",
             HINTON_KD, ("T > 0",)),
    _formula("temperature_log_softmax", "log_softmax(z/T)[k]", "z[k]/T - logsumexp(z/T)", PROVED,
             "log-softmax at temperature T", HINTON_KD, ("T > 0",)),
    _formula("distillation_gradient_with_t_squared", "diff(T**2*kl(softmax(u/T), softmax(v/T)), v[k])",
             "T*(softmax(v/T)[k] - softmax(u/T)[k])", PROVED,
             "the T^2 factor keeps the distillation gradient's scale: T (q_k - p_k) for student logits v",
             HINTON_KD, ("T > 0",)),
    _formula("ce_gradient_rows_sum_to_zero", "sum(diff(ce(z, c), z[j]), j)", "0", PROVED,
             "the gradient of cross-entropy by the logits sums to 0 over the classes", f"{BISHOP}, sec. 4.3.4"),
    _formula("soft_target_gradient_rows_sum_to_zero", "sum(diff(softmax_cross_entropy_prob(z, y), z[j]), j)", "0",
             PROVED, "with a probability target the gradient also sums to 0", f"{BISHOP}, sec. 4.3.4"),
    _formula("label_smoothing_is_ce_plus_kl_to_uniform", "ce(z, c, label_smoothing=eps)",
             "(1 - eps)*ce(z, c) + eps*(kl(uniform(n), softmax(z)) + log(n))", PROVED,
             "label smoothing adds eps times the KL divergence from the uniform distribution (plus log n)",
             f"{SZEGEDY_LS}; {MULLER_LS}"),
    _formula("kl_to_uniform_is_log_n_minus_entropy", "kl(p, uniform(n))", "log(n) - entropy(p)", PROVED,
             "the KL divergence from the uniform distribution is log n minus the entropy",
             f"{COVER_THOMAS}, proof of Theorem 2.6.4"),
    _formula("entropy_of_uniform", "entropy(uniform(n))", "log(n)", PROVED, "the uniform distribution has entropy log n",
             f"{COVER_THOMAS}, Theorem 2.6.4"),
    _formula("kl_of_a_distribution_with_itself", "kl(p, p)", "0", PROVED, "D(p || p) = 0",
             f"{COVER_THOMAS}, Theorem 2.6.3"),
    _formula("jensen_shannon_symmetric", "js(p, q)", "js(q, p)", PROVED, "the Jensen-Shannon divergence is symmetric",
             LIN_JS),
    _formula("jensen_shannon_as_entropies", "js(p, q)", "entropy((p + q)/2) - (entropy(p) + entropy(q))/2", PROVED,
             "JS is the entropy of the mixture minus the mean entropy", f"{LIN_JS}, eq. 4.1"),
    _formula("perplexity_in_nats_and_bits", "exp(entropy(p))", "2**entropy(p, 2)", PROVED,
             "perplexity is e^H in nats and 2^H in bits: bits per token are nats per token over ln 2", JURAFSKY),
    _formula("self_information_adds", "self_information(r*s)", "self_information(r) + self_information(s)", PROVED,
             "the information of independent events adds", f"{COVER_THOMAS}, sec. 2.1"),
    _formula("stable_logsumexp_with_max", "logsumexp(z)", "max(z) + log(sum(exp(z[j] - max(z)), j))", PROVED,
             "logsumexp computed after subtracting the largest logit (no overflow)", f"{GOODFELLOW}, sec. 4.1"),
    _formula("softmax_of_max_shifted_logits", "softmax(z - max(z))[k]", "softmax(z)[k]", PROVED,
             "softmax of the max-shifted logits is softmax (the stable form)", f"{GOODFELLOW}, sec. 4.1"),
    _formula("log_softmax_shift_invariance", "log_softmax(z + a)[k]", "log_softmax(z)[k]", PROVED,
             "log-softmax does not change when a constant is added to every logit", f"{GOODFELLOW}, sec. 6.2.2.3"),
    _formula("focal_loss_with_gamma_0_is_cross_entropy", "-(1 - softmax(z)[c])**0*log_softmax(z)[c]", "ce(z, c)",
             PROVED, "focal loss with gamma = 0 is cross-entropy", LIN_FOCAL),
)

# --- plausible but false (what a hurried reader might write) ------------------------------------

TEXTBOOK_FALSE: tuple = (
    _formula("entropy_at_most_one_nat", "entropy(p)", "1", REFUTED,
             "entropy is bounded by log n, not by 1 nat (n = 5: log 5 = 1.61)", f"{COVER_THOMAS}, Theorem 2.6.4",
             relation="<="),
    _formula("entropy_at_least_log_n", "entropy(p)", "log(n)", REFUTED, "log n is an upper bound of entropy, not a lower one",
             f"{COVER_THOMAS}, Theorem 2.6.4", relation=">="),
    _formula("logsumexp_at_most_max", "logsumexp(z)", "max(z)", REFUTED, "logsumexp exceeds the maximum (unless n = 1)",
             f"{BOYD}, sec. 3.1.5", relation="<="),
    _formula("softmax_temperature_invariant", "softmax(z/T)[k]", "softmax(z)[k]", REFUTED,
             "temperature changes softmax (it is not scale invariant)", HINTON_KD, ("T > 0",)),
    _formula("distillation_gradient_without_t_squared", "diff(kl(softmax(u/T), softmax(v/T)), v[k])",
             "softmax(v/T)[k] - softmax(u/T)[k]", REFUTED,
             "without the T^2 factor the distillation gradient is (q_k - p_k) / T, not q_k - p_k", HINTON_KD, ("T > 0",)),
    _formula("label_smoothing_as_logsumexp", "ce(z, c, label_smoothing=eps)", "(1 - eps)*ce(z, c) + eps*logsumexp(z)",
             REFUTED, "the smoothing term is the cross-entropy to the uniform distribution, not logsumexp",
             f"{SZEGEDY_LS}; {PYTORCH}"),
    _formula("bce_with_logits_even_in_x", "bce_with_logits(-x, t)", "bce_with_logits(x, t)", REFUTED,
             "flipping the logit alone changes BCE (flip the label too)", PYTORCH),
    _formula("focal_loss_with_gamma_1_is_cross_entropy", "-(1 - softmax(z)[c])*log_softmax(z)[c]", "ce(z, c)", REFUTED,
             "focal loss with gamma = 1 down-weights easy examples: not cross-entropy", LIN_FOCAL),
)

IDENTITIES = IDENTITIES + TEXTBOOK_INEQUALITIES + TEXTBOOK_IDENTITIES + TEXTBOOK_FALSE

#: the catalogue's names for the symbols in the ``lhs`` / ``rhs`` strings (for ``parse_formula(names=...)``)
NAMES = {"z": z, "y": y, "p": p, "q": q, "w": w, "u": u, "v": v, "a": a, "b": b, "eps": eps,
         "pos_weight": pw, "r": r, "x": x, "t": t}
#: rows whose strings are display text, not formulas the parser accepts (batch losses)
DISPLAY_ONLY = ("weighted_mean_divides_by_count",)

# the decomposition identities of vocab-parallel cross-entropy (used by symxent.distributed) join the catalogue
from .vocab_parallel import IDENTITIES as VOCAB_PARALLEL_IDENTITIES  # noqa: E402

# ... and those of fused linear cross-entropy (used by symxent.functional.linear_cross_entropy)
from .fused_linear import IDENTITIES as FUSED_LINEAR_IDENTITIES  # noqa: E402

IDENTITIES = IDENTITIES + VOCAB_PARALLEL_IDENTITIES + FUSED_LINEAR_IDENTITIES
# rows whose lhs/rhs strings are for display only (not in parse_formula syntax)
DISPLAY_ONLY = DISPLAY_ONLY + tuple(identity.name for identity in VOCAB_PARALLEL_IDENTITIES + FUSED_LINEAR_IDENTITIES)
_BY_NAME = {identity.name: identity for identity in IDENTITIES}


def get_identity(name: str) -> Identity:
    """The catalogue row called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no identity named {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None


# --- checking ----------------------------------------------------------------------------------

def check_identity(identity) -> IdentityResult:
    """Run the prover on one row (an :class:`Identity` or its name)."""
    return _row.check_identity(get_identity(identity) if isinstance(identity, str) else identity)


def check_all(identities=None) -> list:
    """Every row checked, in catalogue order."""
    return [check_identity(identity) for identity in (IDENTITIES if identities is None else identities)]


@functools.lru_cache(maxsize=None)
def is_proved(name: str) -> bool:
    """Whether the catalogue identity ``name`` is true and proved (the code generator's gate)."""
    identity = get_identity(name)
    return identity.expected == PROVED and check_identity(identity).verdict.status == PROVED


def verify_checks() -> list:
    """One check per identity for ``symxent verify``: the status must match ``expected``."""
    from ..verify import Check

    def runner(identity):
        def run():
            result = check_identity(identity)
            detail = f"{result.verdict.status} (expected {identity.expected}) in {result.verdict.seconds:.2f} s"
            if result.verdict.counterexample:
                cex = result.verdict.counterexample
                detail += f"; lhs = {cex['lhs'][:20]}, rhs = {cex['rhs'][:20]}"
            return result.ok, detail
        return run

    return [Check("identities", identity.name, runner(identity)) for identity in IDENTITIES]
