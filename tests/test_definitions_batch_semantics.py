"""Batch losses of the catalogue follow torch.nn.functional exactly (reductions, weights, ignore_index, smoothing)."""
import math
import random

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symxent as sx


def _batch(rows=5, classes=4, seed=0):
    rng = random.Random(seed)
    logits = [[round(rng.uniform(-3, 3), 3) for _ in range(classes)] for _ in range(rows)]
    targets = [rng.randrange(classes) for _ in range(rows)]
    weight = [round(rng.uniform(0.2, 2), 3) for _ in range(classes)]
    return logits, targets, weight


def _value(expr):
    if isinstance(expr, tuple):
        return [float(e.evalf(30)) for e in expr]
    return float(sp.sympify(expr).evalf(30))


def _close(a, b):
    if isinstance(a, list):
        return all(_close(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    if math.isnan(b):
        return math.isnan(a)
    return abs(a - b) <= 1e-10 * max(1, abs(b))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("use_weight", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["no_smoothing", "smoothing"])
@pytest.mark.parametrize("ignore", [None, 2, 7], ids=["no_ignore", "ignore_in_range", "ignore_out_of_range"])
def test_cross_entropy_loss_matches_torch(reduction, use_weight, eps, ignore):
    logits, targets, weight = _batch()
    if ignore is not None:
        targets[1] = ignore
        targets[3] = ignore
    kwargs = dict(reduction=reduction, label_smoothing=eps, ignore_index=-100 if ignore is None else ignore)
    w = weight if use_weight else None
    got = _value(sx.cross_entropy_loss(logits, targets, weight=w, **kwargs))
    want = F.cross_entropy(torch.tensor(logits, dtype=torch.float64), torch.tensor(targets),
                           weight=None if w is None else torch.tensor(w, dtype=torch.float64), **kwargs)
    assert _close(got, want.tolist())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_probability_targets_match_torch(reduction):
    logits, _, weight = _batch(seed=1)
    rng = random.Random(3)
    probs = []
    for _ in logits:
        raw = [rng.randint(1, 9) for _ in range(4)]
        probs.append([sp.Rational(r, sum(raw)) for r in raw])
    got = _value(sx.cross_entropy_loss(logits, probs, weight=weight, reduction=reduction, label_smoothing=0.2))
    want = F.cross_entropy(torch.tensor(logits, dtype=torch.float64),
                           torch.tensor([[float(p) for p in row] for row in probs], dtype=torch.float64),
                           weight=torch.tensor(weight, dtype=torch.float64), reduction=reduction, label_smoothing=0.2)
    assert _close(got, want.tolist())


@pytest.mark.parametrize("reduction,expected", [("mean", float("nan")), ("sum", 0.0)])
def test_all_targets_ignored(reduction, expected):
    logits, _, _ = _batch(rows=3)
    got = sx.cross_entropy_loss(logits, [-100, -100, -100], reduction=reduction)
    want = F.cross_entropy(torch.tensor(logits), torch.tensor([-100, -100, -100]), reduction=reduction).item()
    assert _close(_value(got), want) and _close(want, expected)


def test_empty_batch_mean_is_nan_and_sum_is_zero():
    assert _value(sx.cross_entropy_loss([], [], reduction="mean")) != _value(sx.cross_entropy_loss([], [], reduction="mean"))
    assert _value(sx.cross_entropy_loss([], [], reduction="sum")) == 0.0
    assert sx.cross_entropy_loss([], [], reduction="none") == ()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_nll_loss_matches_torch(reduction):
    logits, targets, weight = _batch(seed=2)
    targets[0] = -100
    logp = torch.log_softmax(torch.tensor(logits, dtype=torch.float64), 1)
    got = _value(sx.nll_loss(logp.tolist(), targets, weight=weight, reduction=reduction))
    want = F.nll_loss(logp, torch.tensor(targets), weight=torch.tensor(weight, dtype=torch.float64), reduction=reduction)
    assert _close(got, want.tolist())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_binary_cross_entropy_clamps_logs_like_torch(reduction):
    p = [0.0, 1.0, 0.3, 0.999, 0.5, 1e-60]
    t = [0.0, 0.0, 1.0, 1.0, 0.25, 1.0]
    w = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]
    got = _value(sx.binary_cross_entropy_loss(p, t, weight=w, reduction=reduction))
    want = F.binary_cross_entropy(torch.tensor(p, dtype=torch.float64), torch.tensor(t, dtype=torch.float64),
                                  weight=torch.tensor(w, dtype=torch.float64), reduction=reduction)
    assert _close(got, want.tolist())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_with_logits_with_pos_weight_matches_torch(reduction):
    x = [[2.0, -1.5, 0.0], [30.0, -30.0, 0.25]]
    t = [[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]
    pw = [2.0, 0.5, 3.0]
    got = _value(sx.binary_cross_entropy_with_logits_loss(x, t, pos_weight=pw, reduction=reduction))
    want = F.binary_cross_entropy_with_logits(torch.tensor(x, dtype=torch.float64), torch.tensor(t, dtype=torch.float64),
                                              pos_weight=torch.tensor(pw, dtype=torch.float64), reduction=reduction)
    assert _close(got, want.flatten().tolist() if reduction == "none" else want.item())


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    logq = torch.log_softmax(torch.tensor([[0.1, 2.0, -1.0], [1.0, 1.0, 0.0]], dtype=torch.float64), 1)
    p = torch.tensor([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], dtype=torch.float64)
    target = p.log() if log_target else p
    if log_target:
        target = torch.where(torch.isinf(target), torch.full_like(target, -50.0), target)
    got = _value(sx.kl_div_loss(logq.tolist(), target.tolist(), reduction=reduction, log_target=log_target))
    want = F.kl_div(logq, target, reduction=reduction, log_target=log_target).item()
    assert _close(got, want)


def test_document_001_weighted_mean_formula():
    """mean = sum_x w[class_x] * loss_x / sum_x w[class_x] (document 001), written out by hand here."""
    logits, targets, weight = _batch(rows=4, seed=5)
    per_row = [math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(logits, targets)]
    by_hand = sum(weight[y] * l for y, l in zip(targets, per_row)) / sum(weight[y] for y in targets)
    assert _close(_value(sx.cross_entropy_loss(logits, targets, weight=weight)), by_hand)
