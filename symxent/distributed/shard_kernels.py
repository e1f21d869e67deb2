"""The per-shard math of vocab-parallel cross-entropy: the only code that reads a logits shard.

Two passes over a shard's rows ``z`` (R, Cr), written from the proved catalogue rows
``vocab_parallel_row_loss`` and ``vocab_parallel_grad`` (:mod:`symxent.prove.vocab_parallel`):

- :func:`shard_partials` — this shard's part of each class sum the SUM all-reduce adds;
- :func:`shard_gradient` — ``d loss / d z`` on this shard, with the GLOBAL logsumexp (no communication).

``local_target`` is the target's index inside this shard, or -1 where another shard owns it (or the row
is ignored). Both run as torch operations (CUDA kernels on GPU tensors, CPU kernels otherwise). The
generated kernels ``vocab_shard_forward`` / ``vocab_shard_backward`` (requested from the generator; not available yet)
replace the two bodies below; nothing else changes.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor


class ShardPartials(NamedTuple):
    """This shard's part of the class sums, one number per row (``None`` where the option is off)."""

    sum_exp: Tensor  # sum_i exp(z_i - M)
    target_logit: Tensor  # z_t - M where this shard owns t, else 0
    target_weight: Optional[Tensor]  # w_t where this shard owns t, else 0 (with class weights)
    smoothing: Optional[Tensor]  # sum_i w_i (z_i - M) (with label smoothing; w = 1 without weights)


def _owned(local_target: Tensor):
    owned = local_target >= 0
    return owned, torch.where(owned, local_target, 0)


def shard_partials(z: Tensor, row_max: Tensor, local_target: Tensor, weight: Optional[Tensor],
                   smoothing: bool) -> ShardPartials:
    """Per row: ``sum_i exp(z_i - M)``, the owned ``z_t - M``, the owned ``w_t``, ``sum_i w_i (z_i - M)``."""
    shifted = z - row_max.unsqueeze(1)
    owned, index = _owned(local_target)
    if z.shape[1] == 0:  # an empty shard owns no target
        target_logit = z.new_zeros(z.shape[0])
    else:
        target_logit = torch.where(owned, shifted.gather(1, index.unsqueeze(1)).squeeze(1), 0.0)
    target_weight = None
    if weight is not None:
        target_weight = torch.where(owned, weight[index], 0.0) if z.shape[1] else z.new_zeros(z.shape[0])
    smoothing_part = None
    if smoothing:
        smoothing_part = (shifted * weight).sum(1) if weight is not None else shifted.sum(1)
    return ShardPartials(shifted.exp().sum(1), target_logit, target_weight, smoothing_part)


def shard_gradient(z: Tensor, lse: Tensor, local_target: Tensor, weight: Optional[Tensor], onehot_scale: Tensor,
                   smoothing_scale: Optional[Tensor], weight_sum) -> Tensor:
    """``(a + b sum_j w_j) exp(z - lse) - a onehot(t) - b w`` with ``a`` = ``onehot_scale``, ``b`` = ``smoothing_scale``.

    With upstream gradient ``g``: ``a = g (1 - eps) w_t``, ``b = g eps / C`` (identity ``vocab_parallel_grad``).
    """
    probability = torch.exp(z - lse.unsqueeze(1))
    scale = onehot_scale if smoothing_scale is None else onehot_scale + smoothing_scale * weight_sum
    grad = probability * scale.unsqueeze(1)
    if smoothing_scale is not None:
        grad = grad - smoothing_scale.unsqueeze(1) * (weight.unsqueeze(0) if weight is not None else 1.0)
    owned, index = _owned(local_target)
    if z.shape[1]:
        grad.scatter_add_(1, index.unsqueeze(1), torch.where(owned, -onehot_scale, 0.0).unsqueeze(1))
    return grad
