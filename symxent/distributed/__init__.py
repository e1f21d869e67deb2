"""Vocab-parallel cross-entropy on ``torch.distributed``: the classes split over the ranks of a group.

- :func:`vocab_parallel_cross_entropy` — ``torch.nn.functional.cross_entropy`` of the concatenated
  logits from each rank's shard, with autograd; two all-reduces of O(1) numbers per row (:mod:`.exchange`).
- :func:`vocab_parallel_linear_cross_entropy` — the same fused with the output projection, whose classes are split
  over the ranks: chunks of rows as in :func:`symxent.functional.linear_cross_entropy`, no logits in full.
- :mod:`symxent.prove.vocab_parallel` — the decomposition, proved: catalogue rows for :func:`symxent.prove.prove` and the
  partition lemma with its recorded proof.

Importing this package does not import torch (the function does, when called).
"""
from .cross_entropy import vocab_parallel_cross_entropy
from .exchange import COLLECTIVES, ExchangePlan

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy", "ExchangePlan", "COLLECTIVES"]


def __getattr__(name):
    if name == "vocab_parallel_linear_cross_entropy":  # imports torch: loaded at first use
        from .linear import vocab_parallel_linear_cross_entropy
        return vocab_parallel_linear_cross_entropy
    raise AttributeError(f"module 'symxent.distributed' has no attribute {name!r}")
