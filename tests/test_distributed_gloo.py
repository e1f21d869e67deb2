"""vocab_parallel_cross_entropy on 2 and 3 gloo processes equals torch's cross_entropy on the gathered logits.

One spawn per world size runs every case; each rank compares its loss and the gradient on its own
shard with ``torch.nn.functional.cross_entropy`` (and autograd) on the full logits, which every rank
rebuilds from the same seed. Uneven shards (11 classes as 7/4 and 5/4/2, one case with an empty shard).
"""
import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from symxent.distributed import vocab_parallel_cross_entropy
from symxent.distributed.launch import run_on_ranks

NUM_CLASSES = 11
SHARDS = {2: (7, 4), 3: (5, 4, 2)}
ROWS = 7


def _targets_on_every_shard(sizes):
    """Row targets that visit every shard, first and last class of each included."""
    starts = [sum(sizes[:r]) for r in range(len(sizes))]
    picks = [t for start, size in zip(starts, sizes) if size for t in (start, start + size - 1)]
    return [picks[row % len(picks)] for row in range(ROWS)]


def _target_patterns(sizes):
    last_start = NUM_CLASSES - sizes[-1]
    every = _targets_on_every_shard(sizes)
    return {
        "every_shard": every,
        "all_on_last_shard": [last_start + row % sizes[-1] for row in range(ROWS)],
        "ignored_rows": [-100 if row % 3 == 1 else t for row, t in enumerate(every)],
    }


def _cases(world_size):
    """(name, options) for every case; options are plain data."""
    sizes = SHARDS[world_size]
    cases = []
    for pattern, targets in _target_patterns(sizes).items():
        for weighted in (False, True):
            for eps in (0.0, 0.3):
                for reduction in ("none", "mean", "sum"):
                    name = f"{pattern}-{'weight' if weighted else 'noweight'}-eps{eps}-{reduction}"
                    cases.append((name, dict(targets=targets, weighted=weighted, eps=eps, reduction=reduction)))
    every = _targets_on_every_shard(sizes)
    for reduction in ("none", "mean", "sum"):
        cases.append((f"all_ignored-{reduction}", dict(targets=[-100] * ROWS, weighted=True, eps=0.2,
                                                       reduction=reduction)))
    cases += [
        ("ignore_index_is_a_class", dict(targets=every, ignore_index=every[1], weighted=True, eps=0.1,
                                         reduction="mean")),
        ("spatial_NCd", dict(targets=every, weighted=True, eps=0.2, reduction="none", spatial=3)),
        ("spatial_NCd_mean", dict(targets=every, weighted=False, eps=0.0, reduction="mean", spatial=2)),
        ("unbatched", dict(targets=every[3], weighted=True, eps=0.2, reduction="none")),
        ("unbatched_mean", dict(targets=every[0], weighted=False, eps=0.0, reduction="mean")),
        ("float32", dict(targets=every, weighted=True, eps=0.2, reduction="mean", dtype=torch.float32)),
        ("float32_none", dict(targets=every, weighted=False, eps=0.0, reduction="none", dtype=torch.float32)),
        ("bfloat16", dict(targets=every, weighted=False, eps=0.1, reduction="mean", dtype=torch.bfloat16)),
        ("large_logits", dict(targets=every, weighted=True, eps=0.2, reduction="sum", scale=1000.0)),
        ("large_logits_float32", dict(targets=every, weighted=False, eps=0.0, reduction="none", scale=1000.0,
                                      dtype=torch.float32)),
        ("empty_batch", dict(targets=[], weighted=True, eps=0.2, reduction="sum")),
    ]
    if world_size == 3:
        cases.append(("empty_shard", dict(targets=[0, 10, 5, 6, 1, 9, 3], weighted=True, eps=0.2, reduction="mean",
                                          sizes=(6, 0, 5))))
    return cases


def _compare(name, got, want, tolerance, failures):
    if got.shape != want.shape or got.dtype != want.dtype:
        failures.append(f"{name}: shape/dtype {tuple(got.shape)} {got.dtype} != {tuple(want.shape)} {want.dtype}")
        return
    g, w = got.double(), want.double()
    same_nan = torch.equal(torch.isnan(g), torch.isnan(w))
    finite = ~torch.isnan(w)
    error = (g[finite] - w[finite]).abs().max().item() if finite.any() else 0.0
    scale = max(1.0, w[finite].abs().max().item()) if finite.any() else 1.0
    if not same_nan or error > tolerance * scale:
        failures.append(f"{name}: max error {error:.3g} (scale {scale:.3g}), NaN pattern equal: {same_nan}")


def _run_case(rank, name, opts, world_size):
    sizes = opts.get("sizes", SHARDS[world_size])
    offset, size = sum(sizes[:rank]), sizes[rank]
    dtype = opts.get("dtype", torch.float64)
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    target = torch.tensor(opts["targets"], dtype=torch.int64)
    spatial = opts.get("spatial")
    if target.ndim == 0:
        shape = (NUM_CLASSES,)
    elif spatial:
        shape = (target.shape[0], NUM_CLASSES, spatial)
        target = target.unsqueeze(1).repeat(1, spatial)
        target[:, 1] = (target[:, 1] + 3) % NUM_CLASSES
    else:
        shape = (target.shape[0], NUM_CLASSES)
    logits = (torch.randn(shape, generator=generator, dtype=torch.float64) * opts.get("scale", 2.0)).to(dtype)
    weight = (torch.rand(NUM_CLASSES, generator=generator, dtype=torch.float64) + 0.5).to(dtype) \
        if opts["weighted"] else None
    kwargs = dict(ignore_index=opts.get("ignore_index", -100), reduction=opts["reduction"],
                  label_smoothing=opts["eps"])

    full = logits.clone().requires_grad_()
    expected = F.cross_entropy(full, target, weight=weight, **kwargs)
    upstream = torch.randn(expected.shape, generator=generator, dtype=torch.float64).to(dtype)
    expected.backward(upstream)
    expected_grad = full.grad.narrow(-1 if logits.ndim == 1 else 1, offset, size)

    shard = logits.narrow(-1 if logits.ndim == 1 else 1, offset, size).clone().requires_grad_()
    shard_weight = None if weight is None else weight[offset:offset + size]
    loss = vocab_parallel_cross_entropy(shard, target, weight=shard_weight, **kwargs)
    loss.backward(upstream)

    tolerance = {torch.float64: 1e-12, torch.float32: 2e-6, torch.bfloat16: 2e-2}[dtype]
    failures = []
    _compare(f"{name} loss", loss.detach(), expected.detach(), tolerance, failures)
    _compare(f"{name} grad", shard.grad, expected_grad, tolerance, failures)
    return failures


def _error_cases(rank, world_size):
    """Bad input gives the same error on every rank (so no rank waits in a collective)."""
    failures = []
    sizes = SHARDS[world_size]
    shard = torch.zeros(3, sizes[rank], dtype=torch.float64)
    for target, error, message in (
        (torch.tensor([0, NUM_CLASSES, 1]), IndexError, f"Target {NUM_CLASSES} is out of bounds."),
        (torch.tensor([0, -1, 1]), IndexError, "Target -1 is out of bounds."),
    ):
        try:
            vocab_parallel_cross_entropy(shard, target)
            failures.append(f"target {target.tolist()}: no error")
        except error as exc:
            if str(exc) != message:
                failures.append(f"target {target.tolist()}: message {exc}")
    try:
        vocab_parallel_cross_entropy(shard, torch.tensor([0, 1, 2]), weight=torch.ones(NUM_CLASSES, dtype=torch.float64))
        failures.append("full-size weight on a shard: no error")
    except RuntimeError as exc:
        if "weight shard" not in str(exc):
            failures.append(f"weight shard message: {exc}")
    return failures


def _exchange_counts(rank, world_size):
    """The forward makes exactly two all-reduces whose sizes follow ExchangePlan; the backward makes none."""
    import torch.distributed as dist

    from symxent.distributed import ExchangePlan

    calls = []
    original = dist.all_reduce

    def recording(tensor, op=dist.ReduceOp.SUM, group=None, async_op=False):
        calls.append((tensor.numel(), op))
        return original(tensor, op=op, group=group, async_op=async_op)

    failures, rows = [], 5
    sizes = SHARDS[world_size]
    dist.all_reduce = recording
    try:
        for weighted, eps in ((False, 0.0), (True, 0.0), (False, 0.1), (True, 0.1)):
            calls.clear()
            shard = torch.randn(rows, sizes[rank], dtype=torch.float64, requires_grad=True)
            weight = torch.ones(sizes[rank], dtype=torch.float64) if weighted else None
            loss = vocab_parallel_cross_entropy(shard, torch.arange(rows), weight=weight, label_smoothing=eps)
            forward_calls = list(calls)
            loss.backward()
            plan = ExchangePlan(world_size, NUM_CLASSES, weighted, eps > 0)
            expected = [(rows + world_size, dist.ReduceOp.MAX),
                        (rows * (plan.numbers_per_row - 1) + plan.numbers_per_call - world_size, dist.ReduceOp.SUM)]
            if forward_calls != expected or calls != forward_calls:
                failures.append(f"weighted={weighted} eps={eps}: all-reduces {calls}, expected {expected} "
                                f"in the forward and none in the backward")
    finally:
        dist.all_reduce = original
    return failures


def check_all_cases(rank, world_size):
    """Every case on this rank: ``(number of cases run, failures)``."""
    failures, count = [], 0
    for name, opts in _cases(world_size):
        try:
            failures += _run_case(rank, name, opts, world_size)
        except Exception as exc:  # report and go on: every rank fails the same case the same way
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        count += 1
    failures += _error_cases(rank, world_size)
    failures += _exchange_counts(rank, world_size)
    return count + 2, failures


@pytest.mark.parametrize("world_size", [2, 3], ids=["2-ranks", "3-ranks"])
def test_vocab_parallel_matches_torch_on_gathered_logits(world_size):
    """Loss (every rank) and gradient (each rank's shard) equal torch's on the full logits, for every option."""
    results = run_on_ranks(check_all_cases, world_size)
    expected_cases = len(_cases(world_size)) + 2
    for rank, (count, failures) in enumerate(results):
        assert count == expected_cases, f"rank {rank} ran {count} cases"
        assert not failures, f"rank {rank}:\n" + "\n".join(failures)


def test_vocab_parallel_needs_a_process_group():
    """Without init_process_group the call fails with a clear message instead of hanging."""
    import torch.distributed as dist

    if dist.is_initialized():  # pragma: no cover - another test left one
        pytest.skip("a process group is already initialized in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        vocab_parallel_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_case_table_covers_every_option():
    """The case table exercises each reduction, weights, smoothing, ignored rows and targets on every shard."""
    for world_size, sizes in SHARDS.items():
        cases = dict(_cases(world_size))
        assert {c["reduction"] for c in cases.values()} == {"none", "mean", "sum"}
        assert any(c["weighted"] and c["eps"] > 0 for c in cases.values())
        assert any(-100 in c["targets"] for c in cases.values() if isinstance(c["targets"], list))
        starts = [sum(sizes[:r]) for r in range(world_size)]
        owners = {max(r for r, s in enumerate(starts) if s <= t) for t in _targets_on_every_shard(sizes)}
        assert owners == set(range(world_size))
        assert math.prod(sizes) > 0 and sum(sizes) == NUM_CLASSES
