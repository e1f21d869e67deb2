"""The autograd Function of vocab-parallel cross-entropy: rows of one logits shard -> replicated row losses.

Forward (two all-reduces, :mod:`.exchange`):

    M      = MAX over ranks of the local row maxima        (+ the shard sizes: offset o_r, class count C)
    sums   = SUM over ranks of shard_partials(z, M, ...)   (sum exp(z - M), z_t - M, w_t, sum w (z - M))
    loss_n = (1-eps) w_t (log S - (z_t - M)) + eps/C (log S sum w - sum w (z - M))   (identity vocab_parallel_row_loss)

Every rank ends with the same row losses and row weights ``w_t`` (0 on ignored rows). Backward: the
gradient on this shard with the saved global logsumexp ``M + log S`` (identity ``vocab_parallel_grad``),
no communication.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from .. import semantics
from . import exchange
from .shard_kernels import shard_gradient, shard_partials


@dataclass(frozen=True)
class Options:
    """The loss options every rank must pass alike."""

    ignore_index: int = -100
    label_smoothing: float = 0.0
    group: object = None


@dataclass
class _Saved:
    """What the backward needs besides the tensors: the smoothing scale and the weight sum."""

    smoothing_scale: float  # eps / C (0 without smoothing)
    weight_sum: object  # sum of all C class weights (a 0-d tensor, or C without weights)
    one_minus_eps: float


class VocabParallelCrossEntropy(torch.autograd.Function):
    """``apply(z (R, Cr), target (R,) global class indices, weight (Cr,) or None, options) -> (loss (R,), w_t (R,))``."""

    @staticmethod
    def forward(ctx, z, target, weight, options: Options):
        rows, local_classes = z.shape
        eps = options.label_smoothing
        row_max = z.amax(dim=1) if local_classes else z.new_full((rows,), float("-inf"))
        row_max, sizes = exchange.global_row_max(row_max, local_classes, options.group)
        rank = torch.distributed.get_rank(options.group)
        offset, num_classes = sum(sizes[:rank]), sum(sizes)
        ignored = target == options.ignore_index
        semantics.check_targets(torch, target, num_classes, ignored)
        owned = ~ignored & (target >= offset) & (target < offset + local_classes)
        local_target = torch.where(owned, target - offset, -1)

        parts = shard_partials(z, row_max, local_target, weight, smoothing=eps > 0)
        columns = [part for part in parts if part is not None]
        weighted_smoothing = weight is not None and eps > 0
        sums, scalars = exchange.sum_over_shards(columns, [weight.sum()] if weighted_smoothing else [], options.group)
        log_sum_exp = sums[:, 0].log()
        nll = log_sum_exp - sums[:, 1]
        target_weight = sums[:, 2] if weight is not None else (~ignored).to(z.dtype)
        loss = (1 - eps) * target_weight * nll
        weight_sum = scalars[0] if weighted_smoothing else num_classes
        if eps > 0:
            loss = loss + eps / num_classes * (log_sum_exp * weight_sum - sums[:, -1])
        loss = torch.where(ignored, 0.0, loss)
        row_weight = torch.where(ignored, 0.0, target_weight)

        ctx.save_for_backward(z, row_max + log_sum_exp, local_target, row_weight, ignored,
                              weight if weight is not None else z.new_empty(0))
        ctx.saved = _Saved(eps / num_classes, weight_sum, 1 - eps)
        ctx.weighted = weight is not None
        ctx.mark_non_differentiable(row_weight)
        return loss, row_weight

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss, _grad_row_weight):
        z, lse, local_target, row_weight, ignored, weight = ctx.saved_tensors
        saved = ctx.saved
        # ignored rows get exactly 0, even when the upstream gradient is not finite (mean with W = 0)
        onehot_scale = torch.where(ignored, 0.0, grad_loss * saved.one_minus_eps * row_weight)
        smoothing_scale = None
        if saved.smoothing_scale:
            smoothing_scale = torch.where(ignored, 0.0, grad_loss * saved.smoothing_scale)
        grad = shard_gradient(z, lse, local_target, weight if ctx.weighted else None, onehot_scale,
                              smoothing_scale, saved.weight_sum)
        return grad, None, None, None
