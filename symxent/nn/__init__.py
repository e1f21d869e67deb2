"""symxent.nn — loss modules over :mod:`symxent.functional`, with torch.nn's constructor signatures.

:class:`LinearCrossEntropyLoss`: ``torch.nn.LinearCrossEntropyLoss`` (its ``linear`` layer and ``weight`` buffer,
so state dicts load either way) on :func:`symxent.functional.linear_cross_entropy`.
"""
from .linear import LinearCrossEntropyLoss

__all__ = ["LinearCrossEntropyLoss"]
