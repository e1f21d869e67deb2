"""What the ranks exchange: two all-reduces of O(1) numbers per row, never logits.

1. MAX all-reduce of the row maxima (R numbers), with the shard sizes riding along (one slot per
   rank, P numbers per call): every rank learns the global max ``M`` of each row, where its classes
   start (``o_r``) and the global class count ``C``.
2. SUM all-reduce of a stacked (R, k) tensor: ``sum exp(z - M)``, the owned target logit ``z_t - M``,
   the owned target weight ``w_t`` (with class weights) and ``sum w (z - M)`` (with label smoothing), plus
   ``sum w`` once per call (with both).

Why two: the stable sum of exponentials needs the global max first (``exp`` of unshifted logits
overflows), and collectives only reduce elementwise (SUM, MAX), so "max, then sum relative to it" is
two collectives; every other number is a plain class sum that rides in the second one. A single
collective is possible only by gathering every rank's (local max, local sum-exp) pair and merging
locally (identity ``vocab_parallel_logsumexp_shard_maxima``), i.e. O(P) numbers per row instead of O(1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

#: all-reduces per forward (the backward communicates nothing)
COLLECTIVES = 2


def _dist():
    import torch.distributed as dist

    return dist


def global_row_max(row_max, local_classes: int, group=None):
    """MAX all-reduce: ``(M (R,), sizes of all shards in rank order)``; shard sizes travel in P extra slots."""
    import torch

    dist = _dist()
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    exact = round(2 / torch.finfo(row_max.dtype).eps)  # every integer up to 2**24 (float32), 2**53 (float64)
    if local_classes > exact:
        raise ValueError(f"a shard of {local_classes} classes is too large to exchange its size in {row_max.dtype} "
                         f"(at most {exact}); use float64 logits")
    sizes = row_max.new_zeros(world)
    sizes[rank] = local_classes
    buffer = torch.cat([row_max, sizes])
    dist.all_reduce(buffer, op=dist.ReduceOp.MAX, group=group)
    rows = row_max.shape[0]
    return buffer[:rows], [int(size) for size in buffer[rows:].tolist()]


def sum_over_shards(columns: list, scalars: list, group=None):
    """SUM all-reduce of per-row ``columns`` (each (R,)) and per-call ``scalars`` (0-d), in one buffer.

    Returns ``(reduced (R, len(columns)), [reduced scalars])``.
    """
    import torch

    stacked = torch.stack(columns, dim=1)
    buffer = torch.cat([stacked.reshape(-1)] + [s.reshape(1) for s in scalars])
    _dist().all_reduce(buffer, op=_dist().ReduceOp.SUM, group=group)
    rows, width = stacked.shape
    return buffer[: rows * width].reshape(rows, width), list(buffer[rows * width:])


@dataclass(frozen=True)
class ExchangePlan:
    """Numbers exchanged by :func:`vocab_parallel_cross_entropy` for one call, against gathering the logits."""

    world_size: int
    num_classes: int
    weighted: bool
    label_smoothing: bool
    bytes_per_number: int = 4

    @property
    def collectives(self) -> int:
        return COLLECTIVES

    @property
    def numbers_per_row(self) -> int:
        """Per row in the all-reduce buffers: the max, then sum-exp and target logit (+ w_t, + smoothing sum)."""
        return 1 + 2 + int(self.weighted) + int(self.label_smoothing)

    @property
    def numbers_per_call(self) -> int:
        """Per call, independent of the rows: the P shard sizes (+ the weight sum)."""
        return self.world_size + int(self.weighted and self.label_smoothing)

    @property
    def bytes_per_row(self) -> int:
        return self.numbers_per_row * self.bytes_per_number

    @property
    def gathered_bytes_per_row(self) -> int:
        """Gathering the logits instead: each rank receives the other shards' logits, ~C (P-1)/P numbers per row."""
        return round(self.num_classes * (self.world_size - 1) / self.world_size) * self.bytes_per_number

    def to_dict(self) -> dict:
        return {**asdict(self), "collectives": self.collectives, "numbers_per_row": self.numbers_per_row,
                "numbers_per_call": self.numbers_per_call, "bytes_per_row": self.bytes_per_row,
                "gathered_bytes_per_row": self.gathered_bytes_per_row}
