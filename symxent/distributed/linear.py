"""``vocab_parallel_linear_cross_entropy``: fused linear cross-entropy when the output projection's classes are split
over the ranks of a group (each rank holds the rows ``o_r .. o_r + C_r - 1`` of ``linear_weight``).

The chunks of :mod:`symxent.functional.linear`, with the vocab-parallel row loss of :mod:`.autograd` as the row
kernel: per chunk each rank projects onto its own classes, the ranks exchange O(1) numbers per row (a MAX and
one SUM all-reduce), and each rank gets the gradient on its own logits. So each rank's ``grad_weight`` and
``grad_bias`` are its shard's, and ``grad_input``, a sum over all classes, is summed over the ranks by one
all-reduce at the end. ``mean`` divides by the summed weight of the counted targets, summed over the ranks
before the first chunk (each rank knows the weights of its classes only).
"""
from __future__ import annotations

import torch

from .. import semantics as sem
from ..functional import linear as fused
from ..functional.torch_ops import work_dtype
from .autograd import Options, VocabParallelCrossEntropy
from .cross_entropy import _check_process_group, _check_weight_shard


def _shard_row_kernel(weight, eps, group):
    """A chunk of logit shards -> (replicated row losses, the gradient on this shard) through the vocab-parallel
    autograd Function (its backward needs no communication)."""
    def call(z, target, _w, _scalars, want_grad):
        z = z.detach().requires_grad_(want_grad)
        with torch.enable_grad():
            loss, _ = VocabParallelCrossEntropy.apply(z, target, weight, Options(-100, eps, group))
        grad = torch.autograd.grad(loss, z, torch.ones_like(loss))[0] if want_grad else None
        return loss.detach(), grad
    return call


def _shard_chunks(h, w_shard, b_shard, t, weight, ignore_index, eps, cap, chunk, group, row_scale, wants, want_loss):
    """The chunks over this rank's shard: ``(row losses (N,) or None, (grad_h, grad_w_shard, grad_b_shard))``, the
    input's gradient summed over the ranks (it sums over all classes)."""
    w_work = None if weight is None else weight.to(work_dtype(h.dtype))
    b2 = b_shard[:, None] if b_shard is not None else h.new_zeros(0)
    losses, gh, gw, gb = fused.run_chunks(h, w_shard[:, None, :], b2, t[:, None], None, ignore_index, {}, cap,
                                          _shard_row_kernel(w_work, eps, group), chunk, row_scale, wants, want_loss)
    if gh is not None:
        torch.distributed.all_reduce(gh, group=group)
    grads = (gh, None if gw is None else gw[:, 0, :], None if gb is None else gb[:, 0])
    return (None if losses is None else losses[:, 0]), grads


class _VocabParallelLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w_shard, b_shard, t, weight, reduction, ignore_index, eps, cap, chunk, group):
        dist = torch.distributed
        classes = w_shard.shape[0]
        device = h.device
        sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(dist.get_world_size(group))]
        dist.all_gather(sizes, torch.tensor([classes], device=device), group=group)
        sizes = [int(s) for s in sizes]
        offset, total_classes = sum(sizes[:dist.get_rank(group)]), sum(sizes)
        keep = t != ignore_index
        sem.check_targets(torch, t, total_classes, ~keep)
        safe = torch.where(keep, t, 0)
        owned = keep & (safe >= offset) & (safe < offset + classes)
        if weight is None:
            total = keep.sum().to(torch.float64)
        else:  # each rank adds the weights of the targets it owns (none on an empty shard)
            local = (torch.where(owned, weight.to(torch.float64)[(safe - offset).clamp(0, classes - 1)], 0.0)
                     if classes else torch.zeros(t.shape, dtype=torch.float64, device=device))
            total = local.sum()
            dist.all_reduce(total, group=group)
        wants = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        row_scale = None
        if reduction != "none" and any(wants):
            share = 1.0 if reduction == "sum" else 1.0 / total
            row_scale = torch.where(keep, torch.ones(t.shape, dtype=torch.float64, device=device) * share, 0.0)[:, None]
        losses, ctx.grads = _shard_chunks(h, w_shard, b_shard, t, weight, ignore_index, eps, cap, chunk, group,
                                          row_scale, wants, True)
        ctx.reduction, ctx.wants = reduction, wants
        if reduction == "none":
            ctx.call = (ignore_index, eps, cap, chunk, group, b_shard is not None, weight is not None)
            ctx.save_for_backward(h, w_shard, b_shard if b_shard is not None else h.new_zeros(0), t,
                                  weight if weight is not None else h.new_zeros(0))
            return losses
        out = losses.sum(dtype=torch.float64)
        return (out / total if reduction == "mean" else out).to(losses.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.reduction == "none":
            h, w_shard, b_shard, t, weight = ctx.saved_tensors
            ignore_index, eps, cap, chunk, group, has_bias, has_weight = ctx.call
            scale = torch.where(t != ignore_index, grad_out, 0)[:, None]
            # as in forward: an empty shard's bias and weight are empty tensors, not None
            _, grads = _shard_chunks(h, w_shard, b_shard if has_bias else None, t, weight if has_weight else None,
                                     ignore_index, eps, cap, chunk, group, scale, ctx.wants, False)
        else:
            if torch.is_grad_enabled():
                raise RuntimeError("vocab_parallel_linear_cross_entropy: double backward (create_graph=True) is not "
                                   "supported with reduction 'mean' or 'sum'")
            grads, ctx.grads = ctx.grads, None
            if grads is None:
                raise RuntimeError("the backward of vocab_parallel_linear_cross_entropy can run once")
            grads = tuple(None if g is None else g.mul_(grad_out.to(g.dtype)) for g in grads)
        return (*grads,) + (None,) * 8


def vocab_parallel_linear_cross_entropy(input, linear_weight_shard, target, group=None, *, linear_bias_shard=None,
                                        weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0,
                                        softcap=None, chunk_size=None):
    r"""``cross_entropy(input @ W.T + b, target)`` where rank ``r`` of ``group`` holds the classes
    ``o_r .. o_r + C_r - 1`` of ``W`` (``linear_weight_shard`` (C_r, D)), of ``b`` and of the class ``weight``
    (shards in rank order, sizes may differ). ``input`` (N, D) and the GLOBAL class indices ``target`` (N,) are the
    same on every rank, and so is ``chunk_size`` when given (the default is derived from the largest shard). Every
    rank returns the same loss; backward gives each rank the gradient of its shards and the full gradient of
    ``input``. Neither the logits nor their shards exist in full: chunks of rows as in
    :func:`symxent.functional.linear_cross_entropy` (``softcap``, ``chunk_size`` alike), the exchange per row of
    :func:`vocab_parallel_cross_entropy`.
    """
    _check_process_group(group)
    if input.dim() != 2 or linear_weight_shard.dim() != 2 or target.dim() != 1:
        raise RuntimeError(f"vocab_parallel_linear_cross_entropy takes input (N, D), linear_weight_shard (C_r, D) and "
                           f"target (N,); got {tuple(input.shape)}, {tuple(linear_weight_shard.shape)}, "
                           f"{tuple(target.shape)}")
    fused._check_shapes(input, linear_weight_shard, linear_bias_shard)
    fused._check_dtypes_and_devices(input, linear_weight_shard, linear_bias_shard)
    if input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected target dtype to be Long, but got {sem.dtype_name(target.dtype)}")
    reduction = sem.check_reduction(reduction)
    eps = sem.label_smoothing_value(label_smoothing)
    cap = fused._softcap_value(softcap)
    chunk = fused._chunk_rows(chunk_size, None)
    if not chunk:  # every rank must run the same chunks (each runs collectives): size them by the largest shard
        largest = torch.tensor([linear_weight_shard.shape[0]], device=input.device)
        torch.distributed.all_reduce(largest, op=torch.distributed.ReduceOp.MAX, group=group)
        chunk = fused.automatic_chunk_rows(input.shape[0], int(largest), input.shape[1])
    _check_weight_shard(weight, linear_weight_shard.shape[0], input.dtype)
    out = _VocabParallelLinearCrossEntropy.apply(input, linear_weight_shard, linear_bias_shard, target, weight,
                                                 reduction, int(ignore_index), eps, cap, chunk, group)
    return out.to(input.dtype)
