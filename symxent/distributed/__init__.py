"""Vocab-parallel cross-entropy on ``torch.distributed``: the classes split over the ranks of a group.

- :func:`vocab_parallel_cross_entropy` — ``torch.nn.functional.cross_entropy`` of the concatenated
  logits from each rank's shard, with autograd; two all-reduces of O(1) numbers per row (:mod:`.exchange`).
- :mod:`symxent.prove.vocab_parallel` — the decomposition, proved: catalogue rows for :func:`symxent.prove.prove` and the
  partition lemma with its recorded proof.

Importing this package does not import torch (the function does, when called).
"""
from .cross_entropy import vocab_parallel_cross_entropy
from .exchange import COLLECTIVES, ExchangePlan

__all__ = ["vocab_parallel_cross_entropy", "ExchangePlan", "COLLECTIVES"]
