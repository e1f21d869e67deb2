"""PyTorch's loss semantics, written once: checks, layouts, ignore masks, label smoothing, reductions.

Used by the symbolic batch losses (:mod:`symxent.definitions.losses`), :mod:`symxent.functional`, the
CUDA runtime and :mod:`symxent.distributed`, so that every one raises torch's exception with torch's
message. Nothing here computes a loss (the generated kernels do) and nothing here imports NumPy, torch or
SymPy: array helpers take ``xp`` (``numpy`` or ``torch``) and use only what both spell the same way.

- argument checks, with PyTorch's wording and exception types;
- layouts: ``(N, C, d1..dK)`` / ``(C,)`` inputs become ``(R, C)`` rows, ``R = N d1..dK``;
- index targets: the ignore mask, the range check, the per-row weight ``w[y_n]`` (0 where ignored);
- reductions: ``none``; ``sum``; ``mean`` = sum / W with ``W = sum_n w[y_n]`` over non-ignored
  rows for index targets, and sum / (number of rows or elements) otherwise.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

REDUCTIONS = ("none", "mean", "sum")
KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


class TorchCheckError(RuntimeError, ValueError):
    """A check torch makes with ``TORCH_CHECK`` (a ``RuntimeError``, its message kept word for word); also
    a ``ValueError``, which the symbolic catalogue raised for the same checks before they were shared."""


def target_out_of_bounds(value) -> IndexError:
    """torch's error for a class index outside ``[0, C)``: ``IndexError("Target 5 is out of bounds.")``."""
    return IndexError(f"Target {int(value)} is out of bounds.")


def weight_shape_error(num_classes, shape, probability=False) -> TorchCheckError:
    """torch's error for a class-weight vector of the wrong length."""
    prefix = "cross_entropy: " if probability else ""
    return TorchCheckError(f"{prefix}weight tensor should be defined either for all {num_classes} classes or "
                           f"no classes but got weight tensor of shape: {list(shape)}")


def check_unit_value(value, name: str) -> None:
    """binary_cross_entropy's range check of one number (NaN fails): every element in [0, 1]."""
    if not 0 <= value <= 1:
        raise TorchCheckError(f"all elements of {name} should be between 0 and 1")

# torch's names of dtypes, as they appear in its error messages
_TORCH_DTYPE_NAMES = {
    "float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
    "complex64": "ComplexFloat", "complex128": "ComplexDouble",
}


# --- small helpers ------------------------------------------------------------------------

def dtype_name(dtype) -> str:
    """torch's short name of a NumPy or torch dtype ("Float", "Long", ...)."""
    key = str(dtype).replace("torch.", "")
    return _TORCH_DTYPE_NAMES.get(key, key)


def size_repr(shape) -> str:
    """A shape as torch prints it in messages: ``torch.Size([2, 3])``."""
    return f"torch.Size({list(shape)})"


def numel(shape) -> int:
    return math.prod(shape)


def is_floating(dtype) -> bool:
    return dtype_name(dtype) in ("Float", "Double", "Half", "BFloat16")


def is_integral(dtype) -> bool:
    return dtype_name(dtype) in ("Long", "Int", "Short", "Char", "Byte", "Bool") or str(dtype).startswith(
        ("uint", "torch.uint"))


def contiguous(array):
    """A C-contiguous version of a NumPy array or torch tensor (no copy when it already is)."""
    if hasattr(array, "contiguous"):
        return array.contiguous()
    import numpy as np

    return np.ascontiguousarray(array)


# --- arguments ----------------------------------------------------------------------------

def legacy_reduction(size_average, reduce) -> str:
    """The reduction named by the deprecated ``size_average`` / ``reduce`` pair (with torch's warning)."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
        UserWarning, stacklevel=3,
    )
    return reduction


def check_reduction(reduction, allowed=REDUCTIONS) -> str:
    """``ValueError("foo is not a valid value for reduction")`` (torch's wording) unless it is allowed."""
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def reduction_argument(reduction, size_average=None, reduce=None, allowed=REDUCTIONS) -> str:
    """The effective reduction (the deprecated ``size_average`` / ``reduce`` pair first), checked."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    return check_reduction(reduction, allowed)


def label_smoothing_error(label_smoothing) -> TorchCheckError:
    return TorchCheckError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")


def label_smoothing_value(label_smoothing) -> float:
    """``eps`` as torch uses it: above 1 is an error; at or below 0 means no smoothing."""
    eps = float(label_smoothing)
    if eps > 1.0:
        raise label_smoothing_error(label_smoothing)
    return eps if eps > 0.0 else 0.0


def compute_dtype(dtype, what="input"):
    """The dtype the kernels run in: float32/float64 as given, half types in float32 (rounded once at the end)."""
    name = dtype_name(dtype)
    if name in ("Float", "Double"):
        return dtype
    if name in ("Half", "BFloat16"):
        return "float32"
    raise TypeError(f"expected a floating-point {what}, got dtype {dtype}")


# --- class-dimension layouts (cross_entropy, nll_loss) --------------------------------------

@dataclass(frozen=True)
class ClassLayout:
    """Shapes of a class-indexed loss: ``C`` classes, ``R`` rows, the ``reduction='none'`` shape."""

    num_classes: int
    rows: int
    out_shape: tuple
    probability: bool


@dataclass(frozen=True)
class ClassLossSpec:
    """One cross_entropy / nll_loss call, checked: which kernel, its layout and options."""

    kernel: str  # "cross_entropy", "cross_entropy_prob" or "nll"
    layout: ClassLayout
    reduction: str
    ignore_index: int = -100
    options: tuple = ()  # (name, value) of the kernel's scalar options, checked (:data:`KERNEL_OPTIONS`)
    return_lse: bool = False

    @property
    def function(self) -> str:
        """The ``torch.nn.functional`` name: ``nll_loss`` or ``cross_entropy``."""
        return "nll_loss" if self.kernel == "nll" else "cross_entropy"

    def no_class_row_loss(self) -> float:
        """Each row's loss when there are no classes: 0 (an empty sum), or NaN for index targets with label
        smoothing, as torch's ``label_smoothing / C`` times the empty sum (``inf * 0``) on every row."""
        smoothing = dict(self.options).get("label_smoothing", 0.0)
        return float("nan") if smoothing > 0 and not self.layout.probability else 0.0

    def kernel_options(self) -> dict:
        """The kernel's scalar options by name, as the caller gave them (see :func:`kernel_option_values`)."""
        return dict(self.options)


@dataclass(frozen=True)
class ElementwiseSpec:
    """One binary_cross_entropy(_with_logits) / kl_div call, checked.

    Every array broadcasts to ``shape``; ``mean`` divides by ``denominator`` (kl_div's batchmean is a mean
    with ``denominator = input.size(0)``).
    """

    kernel: str  # "bce", "bce_with_logits" or "kl_div"
    shape: tuple
    reduction: str
    denominator: int
    log_target: bool = False

    @property
    def function(self) -> str:
        """The ``torch.nn.functional`` name (``binary_cross_entropy``, ... ``kl_div``)."""
        names = {"bce": "binary_cross_entropy", "bce_with_logits": "binary_cross_entropy_with_logits"}
        return names.get(self.kernel, self.kernel)


def _class_layout(input_shape, probability) -> ClassLayout:
    ndim = len(input_shape)
    num_classes = input_shape[0] if ndim == 1 else input_shape[1]
    out_shape = () if ndim == 1 else (input_shape[0],) + tuple(input_shape[2:])
    return ClassLayout(num_classes, numel(out_shape), out_shape, probability)


IGNORE_INDEX_WITH_PROBABILITIES = TorchCheckError("ignore_index is not supported for floating point target")


def check_targets(xp, target, num_classes, ignored=None) -> None:
    """Every target not ignored lies in ``[0, C)``, else torch's IndexError."""
    out_of_range = (target < 0) | (target >= num_classes)
    if ignored is not None:
        out_of_range = out_of_range & ~ignored
    if bool(out_of_range.any()):
        raise target_out_of_bounds(target[out_of_range][0])


def probability_target_layout(input_shape, target_dtype, ignore_index) -> ClassLayout:
    """Layout of cross_entropy with class-probability targets (target of the input's shape)."""
    if not is_floating(target_dtype):
        raise RuntimeError(
            f"Expected floating point type for target with class probabilities, got {dtype_name(target_dtype)}")
    if ignore_index >= 0:
        raise IGNORE_INDEX_WITH_PROBABILITIES
    if len(input_shape) == 0:
        raise IndexError("Dimension specified as 1 but tensor has no dimensions")
    return _class_layout(tuple(input_shape), probability=True)


def index_target_layout(input_shape, target_shape, target_dtype) -> ClassLayout:
    """Layout of nll_loss / cross_entropy with class-index targets; torch's checks in torch's order."""
    input_shape, target_shape = tuple(input_shape), tuple(target_shape)
    ndim = len(input_shape)
    if ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {ndim})")
    target_batch = target_shape[0] if target_shape else 0
    if ndim != 1 and input_shape[0] != target_batch:
        raise ValueError(f"Expected input batch_size ({input_shape[0]}) to match target batch_size ({target_batch}).")
    if ndim == 1 and len(target_shape) == 1 and target_shape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target_shape[0]}")
    if ndim <= 2:
        if len(target_shape) > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif ndim == 4:
        if len(target_shape) != 3:
            raise RuntimeError(
                f"only batches of spatial targets supported (3D tensors) but got targets of dimension: "
                f"{len(target_shape)}")
        if target_shape != (input_shape[0],) + input_shape[2:]:
            raise RuntimeError(f"size mismatch (got input: {list(input_shape)} , target: {list(target_shape)}")
    else:
        expected = (input_shape[0],) + input_shape[2:]
        if target_shape != expected:
            raise RuntimeError(f"Expected target size {list(expected)}, got {list(target_shape)}")
    if dtype_name(target_dtype) not in ("Long", "Byte"):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {dtype_name(target_dtype)}")
    return _class_layout(input_shape, probability=False)


def check_differentiable(function, **arguments):
    """torch's refusal of a gradient it does not define: ``RuntimeError`` for each named argument that requires
    grad (``function``: the name torch's message uses, e.g. ``nll_loss_forward`` for the weight of nll_loss and
    of index-target cross_entropy). torch differentiates, besides ``input``: the probability target and the
    weight of probability-target cross_entropy, and the target of binary_cross_entropy(_with_logits) and
    kl_div; it refuses the weights of nll_loss, index-target cross_entropy and both BCEs, and ``pos_weight``."""
    for name, value in arguments.items():
        if getattr(value, "requires_grad", False):
            raise RuntimeError(f"The function '{function}' is not differentiable with respect to argument "
                               f"'{name}'. This input cannot have requires_grad True.")


def nll_forward_name(input_ndim: int) -> str:
    """The function torch's messages name for nll_loss and index-target cross_entropy: ``nll_loss_forward`` for 1-D
    and 2-D input, ``nll_loss2d_forward`` for more dimensions (torch lays those out as 4-D)."""
    return "nll_loss_forward" if input_ndim <= 2 else "nll_loss2d_forward"


def check_class_weight(weight, num_classes, input_dtype, *, probability=False):
    """torch's checks of the class-weight vector (shape ``(C,)``; same dtype as the input for index targets)."""
    if weight is None:
        return
    shape = tuple(weight.shape)
    if shape != (num_classes,):
        raise weight_shape_error(num_classes, shape, probability)
    if not probability and dtype_name(weight.dtype) != dtype_name(input_dtype):
        raise RuntimeError(
            f"expected scalar type {dtype_name(input_dtype)} but found {dtype_name(weight.dtype)}")


def class_rows(xp, x):
    """``(N, C, d1..dK)`` -> ``(N d1..dK, C)`` rows (C-contiguous); ``(C,)`` -> ``(1, C)``."""
    if x.ndim == 1:
        return contiguous(x.reshape(1, -1))
    if x.ndim == 2:
        return contiguous(x)
    rows = x.shape[0] * math.prod(x.shape[2:])  # explicit: -1 is ambiguous when there are no classes
    return contiguous(xp.moveaxis(x, 1, -1).reshape(rows, x.shape[1]))


def from_class_rows(xp, rows, input_shape):
    """Inverse of :func:`class_rows`: rows back to the input's layout."""
    input_shape = tuple(input_shape)
    if len(input_shape) <= 2:
        return rows.reshape(input_shape)
    moved = (input_shape[0],) + input_shape[2:] + (input_shape[1],)
    return contiguous(xp.moveaxis(rows.reshape(moved), -1, 1))


def index_rows(xp, target, num_classes, ignore_index, weight):
    """Per-row index-target bookkeeping (``target`` flat int64, ``weight`` the ``(C,)`` class weights).

    Returns ``(safe_target, ignored, row_weight)``: ``safe_target`` has ignored entries replaced by class 0
    (so every row is a valid kernel row), ``ignored`` is the boolean mask or None when no row is ignored,
    ``row_weight[n] = w[y_n]`` (0 where ignored). Raises torch's ``IndexError("Target 5 is out of bounds.")``
    for any other target outside ``[0, C)``.
    """
    ignored = target == ignore_index
    any_ignored = bool(ignored.any())
    out_of_range = (target < 0) | (target >= num_classes)
    if any_ignored:
        out_of_range = out_of_range & ~ignored
    if bool(out_of_range.any()):
        raise target_out_of_bounds(target[out_of_range][0])
    if not any_ignored:
        return target, None, weight[target]
    safe = xp.where(ignored, 0, target)
    if num_classes == 0:  # every row ignored (any other target is out of bounds): no class to look up
        return safe, ignored, xp.zeros_like(target, dtype=weight.dtype)
    return safe, ignored, xp.where(ignored, 0, weight[safe])


def zero_ignored_rows(ignored, *arrays):
    """Ignored rows contribute exactly 0 (loss and gradient), whatever the kernel made of them."""
    if ignored is None:
        return
    for array in arrays:
        if array is not None and array.shape[0]:
            array[ignored] = 0


# --- elementwise layouts (binary_cross_entropy*, kl_div) ------------------------------------

def broadcast_shape(shape_a, shape_b):
    """The broadcast of two shapes; torch's RuntimeError wording when they do not broadcast."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    ndim = max(len(shape_a), len(shape_b))
    a = (1,) * (ndim - len(shape_a)) + shape_a
    b = (1,) * (ndim - len(shape_b)) + shape_b
    out = []
    for dim, (size_a, size_b) in enumerate(zip(a, b)):
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise RuntimeError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                f"at non-singleton dimension {dim}")
        out.append(size_a if size_b == 1 else size_b)
    return tuple(out)


def check_expands_to(shape, target_shape):
    """torch's ``weight.expand(target.size())`` check of binary_cross_entropy (its wording)."""
    shape, target_shape = tuple(shape), tuple(target_shape)
    if len(shape) > len(target_shape):
        raise RuntimeError(
            f"output with shape {list(target_shape)} doesn't match the broadcast shape "
            f"{list(broadcast_shape(shape, target_shape))}")
    for offset in range(1, len(shape) + 1):
        size, want = shape[-offset], target_shape[-offset]
        if size != want and size != 1:
            raise RuntimeError(
                f"Attempting to broadcast a dimension of length {size} at -{offset}! Mismatching argument at "
                f"index 1 had {size_repr(shape)}; but expected shape should be broadcastable to {list(target_shape)}")


def check_result_shape(shape, out_shape):
    """An in-place style broadcast must not grow the result (torch's wording)."""
    if tuple(shape) != tuple(out_shape):
        raise RuntimeError(
            f"output with shape {list(out_shape)} doesn't match the broadcast shape {list(shape)}")


def check_unit_interval(values, name):
    """binary_cross_entropy's range check: every element in [0, 1] (NaN fails)."""
    if values.shape[0] and not bool(((values >= 0) & (values <= 1)).all()):
        raise TorchCheckError(f"all elements of {name} should be between 0 and 1")


def kl_div_warn_mean():
    warnings.warn(
        "reduction: 'mean' divides the total loss by both the batch size and the support size."
        "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
        "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
        UserWarning, stacklevel=3,
    )


# --- softmax dimension ----------------------------------------------------------------------

def softmax_dim(dim, ndim, name="softmax") -> int:
    """torch's dim handling of softmax/log_softmax (``name``): implicit choice (with its warning) and range check."""
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
            "argument.", UserWarning, stacklevel=3)
        dim = 0 if ndim in (0, 1, 3) else 1
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size


def last_dim_rows(xp, x, dim):
    """Move ``dim`` last and flatten the rest: ``(R, C)`` rows (a 0-d input is one row of one class)."""
    if x.ndim == 0:
        return contiguous(x.reshape(1, 1))
    moved = x if dim == x.ndim - 1 else xp.moveaxis(x, dim, -1)
    return contiguous(moved.reshape(numel(moved.shape[:-1]), x.shape[dim]))


def from_last_dim_rows(xp, rows, shape, dim):
    """Inverse of :func:`last_dim_rows`."""
    shape = tuple(shape)
    if len(shape) == 0:
        return rows.reshape(())
    if dim == len(shape) - 1:
        return rows.reshape(shape)
    moved = shape[:dim] + shape[dim + 1:] + (shape[dim],)
    return contiguous(xp.moveaxis(rows.reshape(moved), -1, dim))


# --- the z-loss ---------------------------------------------------------------------------------

def lse_square_scale_value(value) -> float:
    """The z-loss coefficient: a finite number >= 0."""
    scale = float(value)
    if not (scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"lse_square_scale must be a finite number >= 0, got {value!r}")
    return scale


def z_loss_scale(scale, reduction, probability, total_weight, counted, folded=False):
    """The coefficient ``c`` a kernel whose row loss is ``CE_row + c * lse_row**2`` must get for the z-loss
    as Liger-Kernel defines it: ``scale * lse**2`` per counted (not ignored) row, not weighted by the class
    weight; ``sum`` sums it, ``none`` adds it per row, and ``mean`` divides it by the number of counted rows
    while the cross-entropy keeps torch's division by the summed weight ``W`` (index targets; probability
    targets divide both by the number of rows, ``counted`` then). The reduction divides the kernel's rows by
    ``W``, so under ``mean``: ``c = scale * W / counted`` (``folded``: the caller folded ``1/W`` into the
    weights and divides nothing afterwards, so ``c = scale / counted``). ``W``, ``counted`` may be numbers or
    0-d tensors."""
    if reduction != "mean" or not scale:
        return scale
    if folded:  # the rows are not divided afterwards: divide by the counted rows (all rows for probabilities)
        return scale / counted if counted else 0.0
    if probability:  # the reduction divides every row by the number of rows: as the z-loss wants
        return scale
    return scale * total_weight / counted if not isinstance(counted, (int, float)) or counted else 0.0


@dataclass(frozen=True)
class KernelOption:
    """A scalar option of cross_entropy's kernels: its neutral value (the option off) and how a reduction
    rescales it (``None``: passed as given; else a function with :func:`z_loss_scale`'s signature)."""

    neutral: float = 0.0
    rescale: object = None


#: cross_entropy's scalar options, which its generated kernels take as arguments of the same names (the
#: catalogue's ``Arg(name, "scalar", ...)``), in the order the torch ops take them. The backends pass them
#: on by name, an option not given as its neutral value: a new option is a catalogue argument, an entry here
#: and a keyword of ``symxent.functional.cross_entropy``.
KERNEL_OPTIONS = {"label_smoothing": KernelOption(0.0), "lse_square_scale": KernelOption(0.0, z_loss_scale)}


def with_neutral_options(options: dict) -> dict:
    """``options`` with every :data:`KERNEL_OPTIONS` entry it lacks at its neutral value, in the table's order."""
    return {name: float(options.get(name, option.neutral)) for name, option in KERNEL_OPTIONS.items()} | {
        name: value for name, value in options.items() if name not in KERNEL_OPTIONS}


def kernel_option_values(options: dict, reduction, probability, total_weight, counted, folded=False) -> dict:
    """``options`` (name -> value) as the kernels must get them: each rescaled for ``reduction`` where
    :data:`KERNEL_OPTIONS` says how (``total_weight``, ``counted``, ``folded`` as for :func:`z_loss_scale`)."""
    out = {}
    for name, value in options.items():
        rescale = KERNEL_OPTIONS[name].rescale if name in KERNEL_OPTIONS else None
        out[name] = value if rescale is None else rescale(value, reduction, probability, total_weight, counted,
                                                          folded=folded)
    return out


# --- reductions -------------------------------------------------------------------------------

def reduce_loss(loss, reduction, denominator, out_shape):
    """``none``: reshaped to ``out_shape``; ``sum``; ``mean``: sum / ``denominator``, NaN when ``denominator`` is 0
    (as torch: its ``0/0``, and with label smoothing ``NaN + inf``), the gradient NaN too (a tensor denominator:
    the sum is multiplied by ``NaN`` instead of ``1/0 = inf``, which would give ``+-inf`` gradients)."""
    if reduction == "none":
        return loss.reshape(out_shape)
    total = loss.sum()
    if reduction == "sum":
        return total
    if hasattr(denominator, "where"):  # a tensor
        return total * (1 / denominator).where(denominator != 0, float("nan"))
    return total / denominator


def probability_mean_denominator(layout: ClassLayout) -> float:
    """What ``mean`` divides probability-target cross-entropy by: torch's ``input.numel() / C``, the number of
    rows, or NaN (``0/0``) when there are no classes."""
    return layout.rows if layout.num_classes else float("nan")
