"""The per-shard math of vocab-parallel cross-entropy: the only code that reads a logits shard.

Two passes over a shard's rows ``z`` (R, Cr), each one generated kernel (``codegen/torch``, kernels
``vocab_shard_forward`` / ``vocab_shard_backward``, call shapes in notes/KERNEL_CONTRACT.md), derived from
the proved catalogue rows ``vocab_parallel_row_loss`` and ``vocab_parallel_grad`` (:mod:`symxent.prove.vocab_parallel`):

- :func:`shard_partials` — this shard's part of each class sum the SUM all-reduce adds;
- :func:`shard_gradient` — ``d loss / d z`` on this shard, with the GLOBAL logsumexp (no communication).

``local_target`` is the target's index inside this shard, or -1 where another shard owns it (or the row
is ignored). Both call the generated torch kernels (``load_kernel(name, "torch")``): whole-tensor torch
operations, so they run on CUDA tensors as on CPU ones (the generated C kernels compute the same on NumPy
arrays).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from torch import Tensor

from ..runtime.kernels import load_kernel


class ShardPartials(NamedTuple):
    """This shard's part of the class sums, one number per row (``None`` where the option is off)."""

    sum_exp: Tensor  # sum_i exp(z_i - M)
    target_logit: Tensor  # z_t - M where this shard owns t, else 0
    target_weight: Optional[Tensor]  # w_t where this shard owns t, else 0 (with class weights)
    smoothing: Optional[Tensor]  # sum_i w_i (z_i - M) (with label smoothing; w = 1 without weights)


def _weight_or_ones(z: Tensor, weight: Optional[Tensor]) -> Tensor:
    return weight if weight is not None else z.new_ones(z.shape[1])


def shard_partials(z: Tensor, row_max: Tensor, local_target: Tensor, weight: Optional[Tensor],
                   smoothing: bool) -> ShardPartials:
    """Per row: ``sum_i exp(z_i - M)``, the owned ``z_t - M``, the owned ``w_t``, ``sum_i w_i (z_i - M)``."""
    kernel = load_kernel("vocab_shard_forward", "torch")
    sum_exp, target_logit, target_weight, smoothing_part = kernel(
        z, row_max, local_target, _weight_or_ones(z, weight), bool(smoothing))
    return ShardPartials(sum_exp, target_logit, target_weight if weight is not None else None, smoothing_part)


def shard_gradient(z: Tensor, lse: Tensor, local_target: Tensor, weight: Optional[Tensor], onehot_scale: Tensor,
                   smoothing_scale: Optional[Tensor], weight_sum) -> Tensor:
    """``(a + b sum_j w_j) exp(z - lse) - a onehot(t) - b w`` with ``a`` = ``onehot_scale``, ``b`` = ``smoothing_scale``.

    With upstream gradient ``g``: ``a = g (1 - eps) w_t``, ``b = g eps / C`` (identity ``vocab_parallel_grad``);
    ``weight_sum`` is the sum of all C class weights (a 0-d tensor or a number).
    """
    kernel = load_kernel("vocab_shard_backward", "torch")
    smoothing = smoothing_scale is not None
    if not smoothing:  # b = 0: the kernel's case without smoothing reads neither b nor the weight sum
        smoothing_scale, weight_sum = onehot_scale, 0.0
    return kernel(z, lse, local_target, _weight_or_ones(z, weight), onehot_scale, smoothing_scale, weight_sum,
                  smoothing)
