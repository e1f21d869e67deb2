"""torch.nn's loss and softmax modules on :mod:`symxent.functional`: same constructors, buffers and state dicts.

Each module subclasses torch's module of the same name (``isinstance(m, torch.nn.CrossEntropyLoss)`` holds; torch's
constructor runs, so the deprecated ``size_average`` / ``reduce`` pair warns and maps to ``reduction`` exactly as in
torch, and ``weight`` / ``pos_weight`` are buffers under torch's names) plus the keyword-only ``backend=`` (``None``: the functional's
default, ``"torch"`` for tensors; ``"numpy"`` / ``"c"`` take NumPy arrays and return arrays, without autograd;
``"cuda"``). ``forward`` calls the :mod:`symxent.functional` function with the module's arguments; autocast
follows torch's policy there (:mod:`symxent.functional.autocast`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from .. import semantics as sem


class _Functional:
    """The shared part: ``forward(*inputs)`` is ``symxent.functional.<_function>(*inputs, **arguments,
    backend=self.backend)`` with the module's attributes ``_arguments`` by keyword; ``extra_repr`` lists them
    (buffers aside), symxent's options (``_extras`` and ``backend``) only when set."""

    _function: str
    _arguments: tuple[str, ...]
    _extras: tuple[str, ...] = ()
    _tensor_arguments = ("weight", "pos_weight")

    def _symxent_options(self, backend, **extras) -> None:
        self.backend = backend
        for name, value in extras.items():
            setattr(self, name, value)

    def forward(self, *inputs):
        arguments = {name: getattr(self, name) for name in self._arguments}
        return getattr(F, self._function)(*inputs, **arguments, backend=self.backend)

    def extra_repr(self) -> str:
        shown = [f"{name}={getattr(self, name)}" for name in self._arguments
                 if name not in self._tensor_arguments and name not in self._extras]
        shown += [f"{name}={getattr(self, name)!r}" for name in (*self._extras, "backend") if getattr(self, name)]
        return ", ".join(shown)


class CrossEntropyLoss(_Functional, torch.nn.CrossEntropyLoss):
    r"""``torch.nn.CrossEntropyLoss`` on :func:`symxent.functional.cross_entropy`: logits ``(N, C, d1..dK)`` or
    ``(C,)`` against class indices or probabilities,
    :math:`\ell_n = (1-\varepsilon)(-w_{y_n} \log s_{n,y_n}) + \frac{\varepsilon}{C}\sum_c (-w_c \log s_{n,c})`
    with :math:`s = \mathrm{softmax}(z_n)` (``mean`` divides by :math:`\sum_n w_{y_n}` over non-ignored rows).
    symxent's options: ``lse_square_scale`` (the z-loss :math:`+\lambda (\log\sum_c e^{z_{n,c}})^2`),
    ``return_lse`` (forward returns ``(loss, lse)``), ``inplace_backward`` (``backend="cuda"``)."""

    _function = "cross_entropy"
    _arguments = ("weight", "ignore_index", "reduction", "label_smoothing", "lse_square_scale", "return_lse",
                  "inplace_backward")
    _extras = ("lse_square_scale", "return_lse", "inplace_backward")

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0, *, backend: str | None = None,
                 lse_square_scale: float = 0.0, return_lse: bool = False, inplace_backward: bool = False) -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction, label_smoothing)
        self._symxent_options(backend, lse_square_scale=sem.lse_square_scale_value(lse_square_scale),
                              return_lse=return_lse, inplace_backward=inplace_backward)


class NLLLoss(_Functional, torch.nn.NLLLoss):
    r"""``torch.nn.NLLLoss`` on :func:`symxent.functional.nll_loss`: :math:`\ell_n = -w_{y_n} x_{n,y_n}` on
    log-probabilities ``x``, 0 where ``y_n == ignore_index`` (``mean`` divides by :math:`\sum_n w_{y_n}`)."""

    _function = "nll_loss"
    _arguments = ("weight", "ignore_index", "reduction")

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", *, backend: str | None = None) -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self._symxent_options(backend)


class BCELoss(_Functional, torch.nn.BCELoss):
    r"""``torch.nn.BCELoss`` on :func:`symxent.functional.binary_cross_entropy`:
    :math:`\ell = -w (t \max(\log x, -100) + (1 - t) \max(\log(1 - x), -100))` for probabilities ``x``."""

    _function = "binary_cross_entropy"
    _arguments = ("weight", "reduction")

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean", *,
                 backend: str | None = None) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self._symxent_options(backend)


class BCEWithLogitsLoss(_Functional, torch.nn.BCEWithLogitsLoss):
    r"""``torch.nn.BCEWithLogitsLoss`` on :func:`symxent.functional.binary_cross_entropy_with_logits`:
    :math:`\ell = w ((1 - t) x - (1 + (p_w - 1) t) \log\sigma(x))`, ``pos_weight`` :math:`p_w` over the last
    dimension; ``weight`` and ``pos_weight`` are buffers."""

    _function = "binary_cross_entropy_with_logits"
    _arguments = ("weight", "reduction", "pos_weight")

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight: Tensor | None = None, *, backend: str | None = None) -> None:
        super().__init__(weight, size_average, reduce, reduction, pos_weight)
        self._symxent_options(backend)


class KLDivLoss(_Functional, torch.nn.KLDivLoss):
    r"""``torch.nn.KLDivLoss`` on :func:`symxent.functional.kl_div`: pointwise :math:`t (\log t - x)` for
    log-probabilities ``x`` (:math:`e^{t} (t - x)` with ``log_target``); ``batchmean`` divides the sum by the
    batch size (``mean``, by the number of elements, warns as in torch)."""

    _function = "kl_div"
    _arguments = ("reduction", "log_target")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False, *,
                 backend: str | None = None) -> None:
        super().__init__(size_average, reduce, reduction, log_target)
        self._symxent_options(backend)


class _SoftmaxLike(_Functional):
    _arguments = ("dim",)

    def __init__(self, dim: int | None = None, *, backend: str | None = None) -> None:
        super().__init__(dim)
        self._symxent_options(backend)


class Softmax(_SoftmaxLike, torch.nn.Softmax):
    r"""``torch.nn.Softmax`` on :func:`symxent.functional.softmax`: :math:`s_k = e^{x_k} / \sum_j e^{x_j}` along
    ``dim``."""

    _function = "softmax"


class LogSoftmax(_SoftmaxLike, torch.nn.LogSoftmax):
    r"""``torch.nn.LogSoftmax`` on :func:`symxent.functional.log_softmax`: :math:`x_k - \log \sum_j e^{x_j}`
    along ``dim``."""

    _function = "log_softmax"
