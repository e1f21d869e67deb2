"""vocab_parallel_linear_cross_entropy on 2 and 3 gloo processes equals the unfused torch reference
``F.cross_entropy(F.linear(h, W, b), t, ...)`` on the full weight: the loss on every rank, the gradient of the input
on every rank, and each rank's gradient of its own shard of W and b (uneven shards, one of them empty)."""
import pytest
import torch
import torch.nn.functional as F

from symxent.distributed.launch import run_on_ranks

ROWS, FEATURES, CLASSES = 13, 6, 11
SHARDS = {2: (7, 4), 3: (5, 6, 0)}
#: shards whose automatic chunk sizes would differ (each rank must run the same chunks)
LARGE_SHARDS = {2: (70000, 40000)}
CASES = [
    dict(reduction="mean"),
    dict(reduction="sum", label_smoothing=0.2, weighted=True),
    dict(reduction="none", weighted=True),
    dict(reduction="mean", label_smoothing=0.1, softcap=2.0, weighted=True),
    dict(reduction="mean", all_ignored=True),
]


def _full_problem(case):
    gen = torch.Generator().manual_seed(11)
    h = torch.randn(ROWS, FEATURES, dtype=torch.float64, generator=gen)
    W = torch.randn(CLASSES, FEATURES, dtype=torch.float64, generator=gen)
    b = torch.randn(CLASSES, dtype=torch.float64, generator=gen)
    weight = torch.rand(CLASSES, dtype=torch.float64, generator=gen) if case.get("weighted") else None
    t = torch.randint(0, CLASSES, (ROWS,), generator=gen)
    t[::4] = -100
    if case.get("all_ignored"):
        t[:] = -100
    return h, W, b, weight, t


def _on_rank(rank, world_size, cases):
    from symxent.distributed import vocab_parallel_linear_cross_entropy

    sizes = SHARDS[world_size]
    lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
    errors = []
    for case in cases:
        h, W, b, weight, t = _full_problem(case)
        options = dict(reduction=case["reduction"], label_smoothing=case.get("label_smoothing", 0.0))
        # the reference on the full weight
        hr, Wr, br = (x.clone().requires_grad_() for x in (h, W, b))
        z = F.linear(hr, Wr, br)
        if case.get("softcap"):
            z = case["softcap"] * torch.tanh(z / case["softcap"])
        want = F.cross_entropy(z, t, weight=weight, **options)
        go = torch.linspace(0.5, 1.5, want.numel(), dtype=torch.float64).reshape(want.shape)
        want_grads = torch.autograd.grad(want, (hr, Wr, br), go)
        # this rank's shard
        hs, Ws, bs = h.clone().requires_grad_(), W[lo:hi].clone().requires_grad_(), b[lo:hi].clone().requires_grad_()
        got = vocab_parallel_linear_cross_entropy(hs, Ws, t, linear_bias_shard=bs,
                                                  weight=None if weight is None else weight[lo:hi],
                                                  softcap=case.get("softcap"), chunk_size=4, **options)
        got_grads = torch.autograd.grad(got, (hs, Ws, bs), go)
        pairs = [(got, want), (got_grads[0], want_grads[0]), (got_grads[1], want_grads[1][lo:hi]),
                 (got_grads[2], want_grads[2][lo:hi])]
        errors.append([float((a - e).abs().nan_to_num(0.0).max()) if a.numel() else 0.0 for a, e in pairs]
                      + [bool(torch.equal(a.isnan(), e.isnan())) for a, e in pairs])
    return errors


@pytest.mark.parametrize("world_size", [2, 3])
def test_sharded_projection_equals_the_unfused_reference(world_size):
    results = run_on_ranks(_on_rank, world_size, CASES)
    for rank, errors in enumerate(results):
        for case, row in zip(CASES, errors):
            values, nan_patterns = row[:4], row[4:]
            assert all(nan_patterns), (rank, case, row)
            assert max(values) < 1e-12, (rank, case, values)


def _automatic_chunks_on_rank(rank, world_size):
    from symxent.distributed import vocab_parallel_linear_cross_entropy

    sizes = LARGE_SHARDS[world_size]
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(120, 4, generator=gen)
    W = torch.randn(sum(sizes), 4, generator=gen) * 0.1
    t = torch.randint(0, sum(sizes), (120,), generator=gen)
    lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
    got = vocab_parallel_linear_cross_entropy(h, W[lo:hi], t)  # no chunk_size: derived from the largest shard
    return float((got - F.cross_entropy(h @ W.T, t)).abs())


def test_automatic_chunks_agree_across_uneven_shards():
    assert max(run_on_ranks(_automatic_chunks_on_rank, 2)) < 1e-5


def _one_rank_never_arrives(rank, world_size):
    import time

    import torch.distributed as dist

    if rank == 0:
        dist.all_reduce(torch.ones(1))  # waits for rank 1, which is stuck elsewhere
    else:
        time.sleep(120)
    return rank


def test_a_collective_mismatch_times_out_instead_of_hanging():
    with pytest.raises(TimeoutError, match="did not finish"):
        run_on_ranks(_one_rank_never_arrives, 2, timeout=10)
