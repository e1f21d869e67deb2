"""symxent.nn — modules over :mod:`symxent.functional`, with torch.nn's constructor signatures and state dicts.

:class:`CrossEntropyLoss`, :class:`NLLLoss`, :class:`BCELoss`, :class:`BCEWithLogitsLoss`, :class:`KLDivLoss`,
:class:`Softmax`, :class:`LogSoftmax`: torch.nn's modules of those names (same constructor arguments, the
deprecated ``size_average`` / ``reduce`` included; ``weight`` / ``pos_weight`` buffers, so state dicts load either
way) on the generated kernels, plus the keyword-only ``backend=`` and, for :class:`CrossEntropyLoss`,
``lse_square_scale``, ``return_lse`` and ``inplace_backward`` (see :func:`symxent.functional.cross_entropy`).

:class:`LinearCrossEntropyLoss`: ``torch.nn.LinearCrossEntropyLoss`` (its ``linear`` layer and ``weight`` buffer,
so state dicts load either way) on :func:`symxent.functional.linear_cross_entropy`.
"""
from .linear import LinearCrossEntropyLoss
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, LogSoftmax, NLLLoss, Softmax

__all__ = [
    "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "Softmax", "LogSoftmax",
    "LinearCrossEntropyLoss",
]
