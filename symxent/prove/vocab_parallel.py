"""The math of vocab-parallel cross-entropy, proved for any number of shards and classes.

The classes ``0..C-1`` are split over ``R`` ranks: shard ``r`` holds the ``m_r`` classes
``o_r .. o_r + m_r - 1`` (``o_0 = 0``, ``o_{r+1} = o_r + m_r``). Everything rests on two facts:

1. **the partition lemma** (:data:`LEMMAS`): a sum over all classes is the sum over shards of the
   per-shard sums, ``sum_{j<C} f(j) = sum_r sum_{i<m_r} f(o_r + i)``, for any summand ``f``, any ``R``
   and any sizes ``m_r``. The prover does not shift or join ``Sum`` ranges, so this lemma has its own
   proof: SymPy's ``Sum.change_index`` and ``sum_combine`` steps, recorded (two blocks, then induction
   on ``R``);
2. **the row loss and its gradient need only class sums and one max** (:data:`IDENTITIES`, proved by
   :func:`symxent.prove.prove` for a symbolic number of classes ``n``): with any real ``M`` (the
   global row max in practice), ``S = sum_j exp(z_j - M)``, the target logit ``sum_j delta_jc z_j``, the
   target weight ``sum_j delta_jc w_j`` and the smoothing sum ``sum_j w_j (z_j - M)``.

By 1, each of those class sums is a sum over shards of a per-shard number (shard ``r``'s part of
``sum_j delta_jc z_j`` is ``z_c`` when it owns ``c``, else 0): one SUM all-reduce adds them, after one
MAX all-reduce for ``M``. The shard-level rows (logsumexp of the concatenation = logsumexp of the
shards' logsumexps, its max-shifted and per-shard-max forms) are written with logits ``x[r, i]``
(shard ``r``, local class ``i``), i.e. after the partition lemma.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import sympy as sp
from sympy.simplify.simplify import sum_combine

from ..definitions import c, class_sum, epsilon, j, k, log_softmax, n, softmax_cross_entropy, vector
from .identity import Identity
from .prover import PROVED, REFUTED, UNKNOWN, Step, Verdict

# --- symbols ----------------------------------------------------------------------------------

#: number of shards (ranks)
R = sp.Symbol("R", integer=True, nonnegative=True)
#: shard index and local class index
r = sp.Symbol("r", integer=True, nonnegative=True)
i_local = sp.Symbol("i", integer=True, nonnegative=True)
#: x[r, i]: logit of local class i on shard r; m[r]: shard sizes; o[r]: offsets; mu[r]: shard maxima
x = sp.IndexedBase("x", real=True)
m = sp.IndexedBase("m", integer=True, nonnegative=True)
o = sp.IndexedBase("o", integer=True, nonnegative=True)
mu = sp.IndexedBase("mu", real=True)
#: the shift of the exponentials: any real number (the global row max in practice)
M = sp.Symbol("M", real=True)
eps = epsilon  # label smoothing (definitions' symbol)

z = vector("z")  # one row of logits, n classes
w = vector("w", positive=True)  # class weights
u, v = vector("u"), vector("v")  # two shards of n classes each (the false rows)


def _shard_sum(body):
    """``sum_{r<R} sum_{i<m_r} body(r, i)``: a sum over the concatenation of the shards."""
    return sp.Sum(sp.Sum(body, (i_local, 0, m[r] - 1)), (r, 0, R - 1))


def _shard_logsumexp():
    """``log sum_r sum_i exp(x[r, i])``: logsumexp of the concatenated shards."""
    return sp.log(_shard_sum(sp.exp(x[r, i_local])))


# --- the class sums the all-reduce adds (flat row z of n classes) -------------------------------

def sum_exp():
    """``S = sum_j exp(z_j - M)``."""
    return class_sum(lambda q: sp.exp(z[q] - M), z, index=j)


def target_logit():
    """``sum_j delta_jc (z_j - M)``: the shifted target logit as a class sum (one shard owns c)."""
    return class_sum(lambda q: sp.KroneckerDelta(q, c) * (z[q] - M), z, index=j)


def target_weight():
    """``sum_j delta_jc w_j = w_c`` as a class sum."""
    return class_sum(lambda q: sp.KroneckerDelta(q, c) * w[q], z, index=j)


def smoothing_sum():
    """``A = sum_j w_j (z_j - M)``."""
    return class_sum(lambda q: w[q] * (z[q] - M), z, index=j)


def weight_sum():
    """``sum_j w_j``."""
    return class_sum(lambda q: w[q], z, index=j)


def distributed_row_loss():
    """``(1-eps) w_c (log S - (z_c - M)) + eps/n (log S sum_j w_j - A)``: the row loss from the reduced sums."""
    log_s = sp.log(sum_exp())
    return ((1 - eps) * target_weight() * (log_s - target_logit())
            + eps / n * (log_s * weight_sum() - smoothing_sum()))


def distributed_grad():
    """``(1-eps) w_c (p_k - delta_kc) + eps/n (p_k sum_j w_j - w_k)``, ``p_k = exp(z_k - M - log S)``."""
    p_k = sp.exp(z[k] - M - sp.log(sum_exp()))
    return ((1 - eps) * target_weight() * (p_k - sp.KroneckerDelta(k, c))
            + eps / n * (p_k * weight_sum() - w[k]))


# --- catalogue rows (checked by symxent.prove.prove) -------------------------------------------

def _row(name, lhs, rhs, build, expected, description, **kw) -> Identity:
    return Identity(name, lhs, rhs, expected, description=description, source="used by symxent.distributed",
                    build=build, **kw)


EPS_BELOW_ONE = eps < 1

IDENTITIES: tuple = (
    _row("vocab_parallel_logsumexp",
         "log(Sum(exp(x[r, i]), (i, 0, m[r]-1), (r, 0, R-1)))",
         "log(Sum(exp(log(Sum(exp(x[r, i]), (i, 0, m[r]-1)))), (r, 0, R-1)))",
         lambda: (_shard_logsumexp(),
                  sp.log(sp.Sum(sp.exp(sp.log(sp.Sum(sp.exp(x[r, i_local]), (i_local, 0, m[r] - 1)))), (r, 0, R - 1)))),
         PROVED, "logsumexp of the concatenated shards is logsumexp of the shards' logsumexps "
                 "(R shards of sizes m_r; the concatenation's sum split by the partition lemma)"),
    _row("vocab_parallel_logsumexp_max_shift",
         "log(Sum(exp(x[r, i]), (i, 0, m[r]-1), (r, 0, R-1)))",
         "M + log(Sum(exp(x[r, i] - M), (i, 0, m[r]-1), (r, 0, R-1)))",
         lambda: (_shard_logsumexp(), M + sp.log(_shard_sum(sp.exp(x[r, i_local] - M)))),
         PROVED, "max-shifted form used in practice: a MAX all-reduce gives M, then each shard sums "
                 "exp(x - M) and a SUM all-reduce adds the R partial sums"),
    _row("vocab_parallel_logsumexp_shard_maxima",
         "log(Sum(exp(x[r, i]), (i, 0, m[r]-1), (r, 0, R-1)))",
         "M + log(Sum(exp(mu[r] - M)*Sum(exp(x[r, i] - mu[r]), (i, 0, m[r]-1)), (r, 0, R-1)))",
         lambda: (_shard_logsumexp(),
                  M + sp.log(sp.Sum(sp.exp(mu[r] - M) * sp.Sum(sp.exp(x[r, i_local] - mu[r]), (i_local, 0, m[r] - 1)),
                                    (r, 0, R - 1)))),
         PROVED, "online-softmax merge: shards send (local max mu_r, sum exp(x - mu_r)); any M, e.g. max_r mu_r, "
                 "rescales them (the one-collective all_gather variant)"),
    _row("target_logit_is_class_sum", "z[c]", "Sum(KroneckerDelta(j, c)*z[j], (j, 0, n-1))",
         lambda: (z[c], class_sum(lambda q: sp.KroneckerDelta(q, c) * z[q], z, index=j)),
         PROVED, "the target logit is a class sum: by the partition lemma, the sum over shards of the locally "
                 "owned target logit (0 on the shards that do not own c)"),
    _row("smoothing_sum_decomposes",
         "Sum(-w[j]*log_softmax(z)[j], (j, 0, n-1))",
         "log(Sum(exp(z[j] - M), (j, 0, n-1)))*Sum(w[j], (j, 0, n-1)) - Sum(w[j]*(z[j] - M), (j, 0, n-1))",
         lambda: (class_sum(lambda q: -w[q] * log_softmax(z, q), z, index=j),
                  sp.log(sum_exp()) * weight_sum() - smoothing_sum()),
         PROVED, "the weighted label-smoothing sum needs only class sums (it splits over shards)"),
    _row("vocab_parallel_row_loss", "cross_entropy(z, c, weight=w, label_smoothing=epsilon)",
         "(1-epsilon)*W_c*(log(S) - Z_c) + epsilon/n*(log(S)*Sum(w[j]) - Sum(w[j]*(z[j] - M))), "
         "S = Sum(exp(z[j] - M)), Z_c = Sum(KroneckerDelta(j, c)*(z[j] - M)), W_c = Sum(KroneckerDelta(j, c)*w[j])",
         lambda: (softmax_cross_entropy(z, c, weight=w, label_smoothing=eps), distributed_row_loss()),
         PROVED, "PyTorch's weighted, label-smoothed row loss (eps/C, C = n the global class count) from the "
                 "all-reduced class sums and any shift M", assumptions=(EPS_BELOW_ONE,)),
    _row("vocab_parallel_grad", "d/dz[k] cross_entropy(z, c, weight=w, label_smoothing=epsilon)",
         "(1-epsilon)*W_c*(p_k - KroneckerDelta(k, c)) + epsilon/n*(p_k*Sum(w[j]) - w[k]), "
         "p_k = exp(z[k] - M - log(S))",
         lambda: (sp.Derivative(softmax_cross_entropy(z, c, weight=w, label_smoothing=eps), z[k]),
                  distributed_grad()),
         PROVED, "per-shard gradient: softmax with the GLOBAL logsumexp M + log S minus the local one-hot "
                 "(no communication in the backward)", assumptions=(EPS_BELOW_ONE,)),
    # --- plausible but false ---
    _row("sum_of_shard_logsumexps",
         "log(Sum(exp(u[j]), (j, 0, n-1)) + Sum(exp(v[j]), (j, 0, n-1)))",
         "log(Sum(exp(u[j]), (j, 0, n-1))) + log(Sum(exp(v[j]), (j, 0, n-1)))",
         lambda: (sp.log(class_sum(lambda q: sp.exp(u[q]), u, index=j) + class_sum(lambda q: sp.exp(v[q]), v, index=j)),
                  sp.log(class_sum(lambda q: sp.exp(u[q]), u, index=j))
                  + sp.log(class_sum(lambda q: sp.exp(v[q]), v, index=j))),
         REFUTED, "per-shard logsumexps do not add: they combine by logsumexp"),
    _row("shard_local_softmax_gradient",
         "d/du[k] (log(Sum(exp(u[j])) + Sum(exp(v[j]))) - u[c])",
         "exp(u[k] - log(Sum(exp(u[j]), (j, 0, n-1)))) - KroneckerDelta(k, c)",
         lambda: (sp.Derivative(sp.log(class_sum(lambda q: sp.exp(u[q]), u, index=j)
                                       + class_sum(lambda q: sp.exp(v[q]), v, index=j)) - u[c], u[k]),
                  sp.exp(u[k] - sp.log(class_sum(lambda q: sp.exp(u[q]), u, index=j))) - sp.KroneckerDelta(k, c)),
         REFUTED, "a shard's gradient needs the GLOBAL logsumexp: the shard-local softmax is wrong"),
)


# --- the partition lemma: proofs by recorded SymPy steps ---------------------------------------

@dataclass(frozen=True)
class Lemma:
    """A statement about sum ranges with its own recorded proof (``proof()`` returns a :class:`Verdict`)."""

    name: str
    lhs: str
    rhs: str
    description: str
    proof: Callable[[], Verdict] = field(repr=False, compare=False)

    def check(self) -> Verdict:
        return self.proof()

    def claim(self) -> str:
        return f"{self.lhs} == {self.rhs}"


class _Proof:
    """Steps of a proof; each checked step is an equality that SymPy confirmed structurally."""

    def __init__(self, lhs, rhs, method):
        self.lhs, self.rhs, self.method = lhs, rhs, method
        self.steps: list = []
        self.failed = None
        self.start = time.perf_counter()

    def step(self, explanation, expr, confirmed=True, relation="="):
        self.steps.append(Step(explanation, expr, relation))
        if not confirmed and self.failed is None:
            self.failed = explanation

    def verdict(self) -> Verdict:
        seconds = time.perf_counter() - self.start
        if self.failed is None:
            return Verdict(PROVED, self.method, seconds, self.steps, None, self.lhs, self.rhs)
        return Verdict(UNKNOWN, f"step not confirmed: {self.failed}", seconds, self.steps, None, self.lhs, self.rhs)


f = sp.Function("f")  # any summand
G = sp.Function("G")  # a per-shard sum, abstracted in the induction step
n1, n2 = sp.symbols("n1 n2", integer=True, nonnegative=True)
j_global = sp.Symbol("j", integer=True)


def two_blocks_sides(first=n1, second=n2):
    """``sum_{j<n1+n2} f(j)`` and ``sum_{j<n1} f(j) + sum_{i<n2} f(n1 + i)``."""
    lhs = sp.Sum(f(j_global), (j_global, 0, first + second - 1))
    rhs = sp.Sum(f(j_global), (j_global, 0, first - 1)) + sp.Sum(f(first + i_local), (i_local, 0, second - 1))
    return lhs, rhs


def prove_two_blocks() -> Verdict:
    """Concatenation of two blocks of general sizes n1, n2: shift the second block's index, join the ranges."""
    lhs, rhs = two_blocks_sides()
    proof = _Proof(lhs, rhs, "SymPy: Sum.change_index, then sum_combine (Karr: sum_a^b + sum_{b+1}^c = sum_a^c)")
    first = next(t for t in rhs.args if t.limits[0][0] == j_global)
    second = next(t for t in rhs.args if t.limits[0][0] == i_local)
    proof.step("the right-hand side", rhs)
    shifted = second.change_index(i_local, i_local + n1, j_global)
    proof.step("second block re-indexed j = n1 + i (Sum.change_index)", first + shifted,
               shifted == sp.Sum(f(j_global), (j_global, n1, n1 + n2 - 1)))
    joined = sum_combine([first, shifted])
    proof.step("adjacent ranges 0..n1-1 and n1..n1+n2-1 joined (sum_combine)", joined, joined == lhs)
    return proof.verdict()


def offsets_definition():
    """``o_0 = 0`` and ``o_{r+1} = o_r + m_r``: shard r starts at the sum of the sizes before it."""
    return sp.Eq(o[0], 0), sp.Eq(o[r + 1], o[r] + m[r])


def partition_sides(shards=R):
    """``sum_{j<o_R} f(j)`` and ``sum_{r<R} sum_{i<m_r} f(o_r + i)``."""
    lhs = sp.Sum(f(j_global), (j_global, 0, o[shards] - 1))
    rhs = sp.Sum(sp.Sum(f(o[r] + i_local), (i_local, 0, m[r] - 1)), (r, 0, shards - 1))
    return lhs, rhs


def prove_partition() -> Verdict:
    """R shards, general R and sizes: induction on R, the step being the two-block lemma."""
    lhs, rhs = partition_sides()
    proof = _Proof(lhs, rhs, "induction on R; base by evaluation, step by the two-block lemma and sum_combine")
    start_at_zero, next_offset = offsets_definition()
    proof.step("offsets: o_0 = 0, o_{r+1} = o_r + m_r", sp.And(start_at_zero, next_offset), True, "->")
    # base case R = 0: both sides are empty sums (the right one written with G(r) = the shard sum)
    base_lhs = partition_sides(0)[0].subs(o[0], 0)
    base_rhs = sp.Sum(G(r), (r, 0, -1))
    proof.step("R = 0, o_0 = 0: left side", base_lhs, base_lhs.doit() == 0, "->")
    proof.step("R = 0: right side, G(r) = sum_{i<m_r} f(o_r + i)", base_rhs, base_rhs.doit() == 0, "->")
    # step R -> R + 1, assuming P(R)
    hyp_lhs, hyp_rhs = partition_sides(R)
    next_lhs, next_rhs = partition_sides(R + 1)
    proof.step("step: assume P(R), show P(R + 1); its left side", next_lhs, True, "->")
    expanded = next_lhs.subs(o[R + 1], o[R] + m[R])
    proof.step("o_{R+1} = o_R + m_R", expanded,
               expanded == sp.Sum(f(j_global), (j_global, 0, o[R] + m[R] - 1)))
    block_lhs, block_rhs = two_blocks_sides(o[R], m[R])
    lemma = prove_two_blocks()
    proof.step("two-block lemma with n1 = o_R, n2 = m_R", block_rhs,
               lemma.status == PROVED and block_lhs == expanded)
    shard_R = sp.Sum(f(o[R] + i_local), (i_local, 0, m[R] - 1))
    after_hyp = block_rhs.xreplace({hyp_lhs: hyp_rhs})
    proof.step("induction hypothesis P(R) on the first block", after_hyp,
               after_hyp == hyp_rhs + shard_R and hyp_lhs in block_rhs.args)
    abstract = sp.Sum(G(r), (r, 0, R - 1)) + G(R)
    proof.step("with G(r) = sum_{i<m_r} f(o_r + i): last shard as a one-term sum", abstract,
               sp.Sum(G(r), (r, R, R)).doit() == G(R))
    joined = sum_combine([sp.Sum(G(r), (r, 0, R - 1)), sp.Sum(G(r), (r, R, R))])
    proof.step("ranges 0..R-1 and R..R joined (sum_combine)", joined, joined == sp.Sum(G(r), (r, 0, R)))
    final = joined.replace(G, sp.Lambda(r, sp.Sum(f(o[r] + i_local), (i_local, 0, m[r] - 1))))
    proof.step("G(r) written out: the right side of P(R + 1)", final, final == next_rhs)
    return proof.verdict()


LEMMAS: tuple = (
    Lemma("shard_sum_two_blocks", "Sum(f(j), (j, 0, n1+n2-1))",
          "Sum(f(j), (j, 0, n1-1)) + Sum(f(n1 + i), (i, 0, n2-1))",
          "a sum over the concatenation of two blocks of any sizes is the sum of the blocks' sums",
          prove_two_blocks),
    Lemma("shard_sum_partition", "Sum(f(j), (j, 0, o[R]-1))",
          "Sum(f(o[r] + i), (i, 0, m[r]-1), (r, 0, R-1))",
          "partition lemma: with o_0 = 0, o_{r+1} = o_r + m_r, a class sum is the sum over R shards of the "
          "per-shard sums (any R, any sizes m_r, any summand f)", prove_partition),
)

