"""The vocab-parallel decomposition: catalogue rows get their verdicts, the partition lemma is proved,
and the proved formulas agree numerically with torch and with explicit sums."""
import random

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from symxent.definitions import c, k, n
from symxent.distributed import ExchangePlan
from symxent.prove import vocab_parallel as di
from symxent.prove import PROVED, REFUTED, Identity, check_identity
from symxent.prove.identities import IDENTITIES as MAIN_CATALOGUE


@pytest.mark.parametrize("row", di.IDENTITIES, ids=[row.name for row in di.IDENTITIES])
def test_decomposition_row_gets_its_expected_verdict(row):
    """Each row is proved for any number of classes / shards (or refuted with a counterexample)."""
    result = check_identity(row)
    assert result.verdict.status == row.expected, result.verdict.method
    if row.expected == REFUTED:
        assert result.verdict.counterexample is not None
    else:
        assert "numeric" not in result.verdict.method


def test_rows_are_in_the_main_catalogue_with_unique_names():
    """The rows are the prover's Identity type, part of the main catalogue, and no name is used twice."""
    assert all(isinstance(row, Identity) for row in di.IDENTITIES)
    assert set(di.IDENTITIES) <= set(MAIN_CATALOGUE)
    names = [row.name for row in MAIN_CATALOGUE] + [lemma.name for lemma in di.LEMMAS]
    assert len(set(names)) == len(names)


def test_shard_rows_are_for_symbolic_shard_count_and_sizes():
    """The shard-level rows speak about R shards of sizes m_r, all symbolic (not a fixed split)."""
    for name in ("vocab_parallel_logsumexp", "vocab_parallel_logsumexp_max_shift",
                 "vocab_parallel_logsumexp_shard_maxima"):
        lhs, rhs = next(row for row in di.IDENTITIES if row.name == name).sides()
        assert di.R in lhs.free_symbols and any(isinstance(a, sp.Indexed) and a.base == di.m for a in lhs.atoms(sp.Indexed))


@pytest.mark.parametrize("lemma", di.LEMMAS, ids=[lemma.name for lemma in di.LEMMAS])
def test_partition_lemma_is_proved_step_by_step(lemma):
    """Every recorded SymPy step of the two-block lemma and of the induction on R is confirmed."""
    verdict = lemma.check()
    assert verdict.status == PROVED, verdict.method
    assert len(verdict.steps) >= 3
    assert "\\begin{aligned}" in verdict.latex()


def _evaluate_sum(expr, replace, table):
    """An explicit Python sum over the (nested) limits of ``expr``, innermost limit first."""
    *inner, (index, low, high) = expr.limits
    body = sp.Sum(expr.function, *inner) if inner else expr.function
    total = 0.0
    for value in range(int(low.xreplace(replace)), int(high.xreplace(replace)) + 1):
        term = body.subs(index, value)
        total += _evaluate_sum(term, replace, table) if inner else float(term.xreplace(replace).xreplace(table))
    return total


def test_partition_lemma_sides_agree_with_explicit_sums():
    """Independent check: for concrete shard sizes (an empty shard included), both sides are the same sum."""
    rng = random.Random(7)
    values = [rng.uniform(-3, 3) for _ in range(30)]
    table = {di.f(q): values[q] for q in range(30)}
    for sizes in [(3,), (5, 4, 2), (0, 6, 1, 3), (2, 2, 2, 2, 2)]:
        offsets = [sum(sizes[:r]) for r in range(len(sizes) + 1)]
        replace = {di.o[r]: offsets[r] for r in range(len(offsets))} | {di.m[r]: s for r, s in enumerate(sizes)}
        lhs, rhs = di.partition_sides(len(sizes))
        expected = sum(values[:sum(sizes)])
        assert _evaluate_sum(lhs, replace, table) == pytest.approx(expected, abs=1e-12)
        assert _evaluate_sum(rhs, replace, table) == pytest.approx(expected, abs=1e-12)


def _numbers(generator, size, low=-3.0, high=3.0):
    return (torch.rand(size, generator=generator, dtype=torch.float64) * (high - low) + low).tolist()


@pytest.mark.parametrize("shift", [0.0, 3.7, -250.0], ids=["M=0", "M=3.7", "M=-250"])
def test_proved_row_loss_and_gradient_equal_torch(shift):
    """The distributed formulas, evaluated at 5 classes and ANY shift M, equal torch's loss and gradient."""
    size, target, eps = 5, 3, 0.3
    generator = torch.Generator().manual_seed(11)
    logits, weights = _numbers(generator, size), _numbers(generator, size, 0.5, 2.0)
    full = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    expected = F.cross_entropy(full.unsqueeze(0), torch.tensor([target]), weight=torch.tensor(weights, dtype=torch.float64),
                               label_smoothing=eps, reduction="sum")
    expected.backward()
    values = {n: size, c: target, di.eps: sp.Rational(3, 10), di.M: sp.Float(shift, 30)}
    values |= {di.z[q]: sp.Float(v, 30) for q, v in enumerate(logits)} | {di.w[q]: sp.Float(v, 30) for q, v in enumerate(weights)}
    loss = di.distributed_row_loss().xreplace({n: size, c: target}).doit().xreplace(values)
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    for index in range(size):
        grad = di.distributed_grad().xreplace({n: size, c: target, k: index}).doit().xreplace(values)
        assert float(grad) == pytest.approx(full.grad[index].item(), rel=1e-10, abs=1e-12)


def test_exchange_plan_counts_numbers_and_bytes():
    """Two collectives; 3 numbers per row plain, 5 with weights and smoothing; gathering costs ~C (P-1)/P."""
    plain = ExchangePlan(world_size=4, num_classes=1000, weighted=False, label_smoothing=False)
    full = ExchangePlan(world_size=4, num_classes=1000, weighted=True, label_smoothing=True)
    assert (plain.collectives, plain.numbers_per_row, plain.bytes_per_row) == (2, 3, 12)
    assert (full.numbers_per_row, full.numbers_per_call, full.bytes_per_row) == (5, 5, 20)
    assert plain.gathered_bytes_per_row == 750 * 4
    assert plain.to_dict()["gathered_bytes_per_row"] == 3000
