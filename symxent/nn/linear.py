"""The fused linear + cross-entropy module."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.modules.loss import _WeightedLoss

from .. import semantics as sem
from ..functional.linear import linear_cross_entropy


class LinearCrossEntropyLoss(_WeightedLoss):
    r"""``torch.nn.LinearCrossEntropyLoss`` on symxent's chunked kernels: the loss of ``linear(input)`` against
    ``target`` without the logits in full. torch's arguments (``in_features``, ``num_classes``, ``out_features``,
    ``bias``, ``device``, ``dtype``, ``reduction``, ``weight``, ``ignore_index``, ``label_smoothing``,
    ``options``) and state dict (``linear.weight`` stored flat as ``(C * prod(out_features), in_features)``,
    ``linear.bias``, the ``weight`` buffer), then symxent's: ``lse_square_scale``, ``softcap``, ``loss`` /
    ``loss_params``, ``chunk_size``, ``backend`` (see :func:`symxent.functional.linear_cross_entropy`)."""

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (), bias: bool = False,
                 device=None, dtype=None, reduction: str = "mean", weight: Tensor | None = None,
                 ignore_index: int | None = None, label_smoothing: float = 0.0, options=None,
                 lse_square_scale: float = 0.0, softcap: float | None = None, loss=None, loss_params=None,
                 chunk_size: int | None = None, backend: str | None = None) -> None:
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        super().__init__(weight=weight, size_average=None, reduce=None, reduction=sem.check_reduction(reduction))
        self.num_classes, self.out_features = num_classes, tuple(out_features)
        self.ignore_index, self.label_smoothing, self.options = ignore_index, label_smoothing, options
        self.lse_square_scale = sem.lse_square_scale_value(lse_square_scale)
        self.softcap, self.loss, self.loss_params = softcap, loss, loss_params
        self.chunk_size, self.backend = chunk_size, backend
        self.linear = torch.nn.Linear(in_features, math.prod(self.out_features, start=num_classes), bias=bias,
                                      device=device, dtype=dtype)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        shape = (self.num_classes, *self.out_features)
        linear_weight = self.linear.weight.reshape(*shape, self.linear.in_features)
        linear_bias = self.linear.bias.reshape(shape) if self.linear.bias is not None else None
        return linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias, weight=self.weight,
                                    reduction=self.reduction, ignore_index=self.ignore_index,
                                    label_smoothing=self.label_smoothing, options=self.options,
                                    lse_square_scale=self.lse_square_scale, softcap=self.softcap, loss=self.loss,
                                    loss_params=self.loss_params, chunk_size=self.chunk_size, backend=self.backend)

    def extra_repr(self) -> str:
        extras = "".join(f", {name}={getattr(self, name)!r}" for name in
                         ("lse_square_scale", "softcap", "chunk_size", "backend") if getattr(self, name))
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, reduction={self.reduction}, "
                f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}{extras}")
