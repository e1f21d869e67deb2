"""Checks for ``symxent verify``: the partition lemma's proofs and a 2-process gloo run against torch.

The decomposition rows of :data:`symxent.prove.vocab_parallel.IDENTITIES` are checked with the main
identity catalogue they join.
"""
from __future__ import annotations

from ..prove.vocab_parallel import LEMMAS

#: shard sizes of the 2-process run (uneven on purpose): 11 classes as 7 + 4
GLOO_SHARDS = (7, 4)


def compare_with_torch_on_rank(rank, world_size, sizes=GLOO_SHARDS) -> dict:
    """On one rank of a running group: vocab_parallel_cross_entropy against torch's cross_entropy on the
    gathered logits, for no options and for weights + label smoothing, each reduction; a row is ignored.

    Returns this rank's classes, the losses (mean, weighted and smoothed) and the largest errors of the
    loss and of this shard's gradient.
    """
    import torch
    import torch.nn.functional as F

    from .cross_entropy import vocab_parallel_cross_entropy

    if len(sizes) != world_size:
        raise ValueError(f"{len(sizes)} shard sizes for {world_size} ranks")
    generator = torch.Generator().manual_seed(0)
    classes, offset, size = sum(sizes), sum(sizes[:rank]), sizes[rank]
    logits = torch.randn(6, classes, generator=generator, dtype=torch.float64) * 3
    weight = torch.rand(classes, generator=generator, dtype=torch.float64) + 0.5
    target = torch.tensor([0, classes - 1, sizes[0] - 1, min(sizes[0], classes - 1), -100, 2])
    out = {"rank": rank, "classes": f"{offset}..{offset + size - 1}", "max_loss_error": 0.0, "max_grad_error": 0.0}
    for reduction in ("none", "mean", "sum"):
        for w, eps in ((None, 0.0), (weight, 0.25)):
            full = logits.clone().requires_grad_()
            expected = F.cross_entropy(full, target, weight=w, reduction=reduction, label_smoothing=eps)
            expected.sum().backward()
            shard = logits[:, offset:offset + size].clone().requires_grad_()
            got = vocab_parallel_cross_entropy(shard, target, weight=None if w is None else w[offset:offset + size],
                                               reduction=reduction, label_smoothing=eps)
            got.sum().backward()
            out["max_loss_error"] = max(out["max_loss_error"], (got - expected).abs().max().item())
            out["max_grad_error"] = max(out["max_grad_error"],
                                        (shard.grad - full.grad[:, offset:offset + size]).abs().max().item())
            if reduction == "mean" and eps:
                out["loss"], out["torch_loss"] = got.item(), expected.item()
    return out


def verify_checks() -> list:
    from ..prove.prover import PROVED
    from ..verify import Check

    def lemma_runner(lemma):
        def run():
            verdict = lemma.check()
            return verdict.status == PROVED, f"{verdict.status}: {verdict.method} ({verdict.seconds:.2f} s)"
        return run

    def gloo_run():
        from .launch import run_on_ranks

        ranks = run_on_ranks(compare_with_torch_on_rank, len(GLOO_SHARDS))
        worst = max(max(r["max_loss_error"], r["max_grad_error"]) for r in ranks)
        return worst < 1e-12, f"2 gloo processes, shards {GLOO_SHARDS}: max |error| vs torch {worst:.1e}"

    checks = [Check("distributed", lemma.name, lemma_runner(lemma)) for lemma in LEMMAS]
    checks.append(Check("distributed", "vocab_parallel_cross_entropy_gloo_vs_torch", gloo_run))
    return checks
