"""``vocab_parallel_cross_entropy``: torch's cross_entropy when the classes are split over the ranks of a group."""
from __future__ import annotations

from .. import semantics as sem


def _check_process_group(group):
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("vocab_parallel_cross_entropy needs an initialized process group: call "
                           "torch.distributed.init_process_group(...) on every rank first")
    if dist.get_rank(group) < 0:
        raise RuntimeError("vocab_parallel_cross_entropy: this rank is not a member of the given group")


def _check_weight_shard(weight, local_classes, input_dtype):
    if weight is None:
        return
    if tuple(weight.shape) != (local_classes,):
        raise RuntimeError(
            f"weight shard should be defined for the {local_classes} classes of this rank's logits shard "
            f"but got weight tensor of shape: {list(weight.shape)}")
    sem.check_class_weight(weight, local_classes, input_dtype)
    if weight.requires_grad:
        raise RuntimeError("The function 'cross_entropy' is not differentiable with respect to argument 'weight'. "
                           "This input cannot have requires_grad True.")


def vocab_parallel_cross_entropy(logits_shard, target, group=None, *, weight=None, ignore_index: int = -100,
                                 reduction: str = "mean", label_smoothing: float = 0.0, size_average=None,
                                 reduce=None):
    r"""Cross-entropy of logits whose classes are split over the ranks of ``group``, as
    ``torch.nn.functional.cross_entropy`` on the concatenated logits.

    ``logits_shard``: this rank's classes, shape (N, Cr, d1..dK) or (Cr,); rank ``r`` of the group holds
    the classes ``o_r .. o_r + Cr - 1`` in rank order (shards may differ in size; ``C = sum Cr``).
    ``target``: the GLOBAL class indices in [0, C) (or ``ignore_index``), the same on every rank.
    ``weight``: this rank's shard of the class weights, shape (Cr,). ``label_smoothing`` smooths with
    PyTorch's eps / C, C the global class count. Every rank returns the same loss; ``backward`` gives
    each rank the gradient on its own shard.

    Per row the ranks exchange O(1) numbers in two all-reduces (a MAX, then one SUM of a stacked
    tensor), never logits; the backward communicates nothing. Class-probability targets are not supported.
    """
    import torch

    from .autograd import Options, VocabParallelCrossEntropy

    _check_process_group(group)
    if not isinstance(logits_shard, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("vocab_parallel_cross_entropy takes torch tensors (logits_shard, target)")
    reduction = sem.reduction_argument(reduction, size_average, reduce)
    eps = sem.label_smoothing_value(label_smoothing)
    if tuple(logits_shard.shape) == tuple(target.shape) and target.is_floating_point():
        raise NotImplementedError("vocab_parallel_cross_entropy supports class-index targets only, "
                                  "not class probabilities")
    layout = sem.index_target_layout(logits_shard.shape, target.shape, target.dtype)
    _check_weight_shard(weight, layout.num_classes, logits_shard.dtype)
    work = sem.compute_dtype(logits_shard.dtype)  # float32 / float64 as given; half types in float32
    work = torch.float32 if work == "float32" else work

    z = sem.class_rows(torch, logits_shard.to(work))
    t = target.reshape(-1).to(device=logits_shard.device, dtype=torch.int64)
    w = None if weight is None else weight.to(device=logits_shard.device, dtype=work)
    loss, row_weight = VocabParallelCrossEntropy.apply(z, t, w, Options(int(ignore_index), eps, group))
    return sem.reduce_loss(loss, reduction, row_weight.sum(), layout.out_shape).to(logits_shard.dtype)
