"""Compile a generated CUDA module at first use and call it on tensors: :func:`load_cuda_kernel`.

- Build: ``torch.utils.cpp_extension.load_inline`` with the checked-in ``codegen/cuda/NAME.cu``
  (or a user loss's freshly generated source) and its pybind11 binding (rendered from
  ``templates/*_binding.tmpl.cpp``), flags :data:`NVCC_FLAGS` (sm_90 code plus compute_90 PTX).
  Needs PyTorch with CUDA, ``nvcc`` and ``ninja``; with no usable GPU :func:`load_cuda_kernel`
  raises ``RuntimeError`` saying why.
- Cache: ``$SYMXENT_CACHE_DIR`` or ``~/.cache/symxent`` / ``cuda`` / one build folder per hash of
  (source, binding, flags, torch and CUDA versions); a process loads each module once.
- Calls take CUDA tensors; pointers, the current stream and the sizes go to the C-linkage host
  functions of the ``.cu`` file. Outputs are allocated here (the in-place gradient reuses the
  input's buffer); nothing here computes a loss.

Kernels (what :func:`load_cuda_kernel` returns, by the loss's kind):

- :class:`RowKernel` (row losses: cross_entropy, cross_entropy_prob, nll, user losses):
  ``forward(z, target, weight=None, *, options=None, ignore_index=-100, reduction="mean",
  want_grad=True, inplace=False, return_lse=False) -> RowResult(loss, lse, grad)`` and
  ``backward(grad, grad_output) -> grad`` (scaled in place; rows whose factor is 1 are skipped).
- :class:`MapKernel` (softmax, log_softmax): ``forward(z) -> out``, ``backward(out, grad_output)``.
- :class:`ElementwiseKernel` (bce, bce_with_logits, kl_div): ``forward(inputs, *, options=None,
  reduction="none", want_grad=True) -> (loss, grad)``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import inspect
import math
from dataclasses import dataclass

from ... import semantics
from ..loss import Loss
from ..roles import Role
from .losses import CUDA_LOSSES
from .target import CudaTarget, case_functions, kernel_params

#: nvcc flags (torch adds -O2-level host flags and its __CUDA_NO_HALF_* defines)
NVCC_FLAGS = ("-O3", "-std=c++17", "-lineinfo", "-gencode=arch=compute_90,code=sm_90",
              "-gencode=arch=compute_90,code=compute_90")
#: the kernels use thread-block clusters and distributed shared memory: Hopper (sm_90) or newer
MIN_CAPABILITY = (9, 0)
REDUCTIONS = ("none", "mean", "sum")


def _torch():
    import torch

    return torch


def _dtype_codes() -> dict:
    torch = _torch()
    return {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def unavailable_reason(device=None):
    """Why the CUDA kernels cannot run here (a sentence), or None when they can."""
    try:
        torch = _torch()
    except ImportError:
        return "PyTorch is not installed"
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) was built without CUDA"
    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    capability = torch.cuda.get_device_capability(device)
    if capability < MIN_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        return (f"the kernels need compute capability {MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} (Hopper) or newer "
                f"for thread-block clusters; {name} has {capability[0]}.{capability[1]}")
    from torch.utils.cpp_extension import CUDA_HOME
    if CUDA_HOME is None:
        return "nvcc was not found (set CUDA_HOME to the CUDA toolkit)"
    return None


def require_cuda(device=None) -> None:
    reason = unavailable_reason(device)
    if reason is not None:
        raise RuntimeError(f"symxent CUDA kernels are unavailable: {reason}")


# --- building -------------------------------------------------------------------------------

def checked_in_source(name: str) -> str:
    """The checked-in ``codegen/cuda/NAME.cu`` (installed as ``symxent_codegen/cuda``)."""
    path = importlib.resources.files("symxent_codegen") / "cuda" / f"{name}.cu"
    if not path.is_file():
        raise FileNotFoundError(f"{name}.cu is missing from codegen/cuda/; run: symxent codegen --all")
    return path.read_text()


def build_key(source: str, binding: str) -> str:
    torch = _torch()
    text = "\0".join([source, binding, " ".join(NVCC_FLAGS), torch.__version__, str(torch.version.cuda)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compile_module(loss: Loss, source: str):
    """The compiled extension module of ``source`` (built once per key, then loaded from disk)."""
    from torch.utils.cpp_extension import load_inline

    from ...runtime.cache import cache_dir

    binding = CudaTarget().binding(loss)
    name = f"symxent_cuda_{loss.name}_{build_key(source, binding)}"
    directory = cache_dir() / "cuda" / name
    directory.mkdir(parents=True, exist_ok=True)
    options = dict(extra_cuda_cflags=list(NVCC_FLAGS), build_directory=str(directory), with_cuda=True, verbose=False)
    if "no_implicit_headers" in inspect.signature(load_inline).parameters:  # torch >= 2.7: the sources as they are
        options["no_implicit_headers"] = True
    try:
        return load_inline(name=name, cpp_sources=[binding], cuda_sources=[source], functions=None, **options)
    except RuntimeError as exc:
        if "Ninja is required" in str(exc):
            raise RuntimeError("building the symxent CUDA kernels needs ninja: pip install ninja") from exc
        raise


def make_kernel(loss: Loss, module):
    kinds = {"row": RowKernel, "map": MapKernel, "elementwise": ElementwiseKernel}
    return kinds[loss.kind](loss, module)


@functools.lru_cache(maxsize=None)
def load_cuda_kernel(name: str):
    """The generated CUDA kernel ``name`` (a key of :data:`CUDA_LOSSES`), compiled at first use.

    Raises ``RuntimeError`` when CUDA kernels cannot run here (no GPU, CPU-only PyTorch, a GPU
    older than Hopper, no nvcc), ``KeyError`` for an unknown name.
    """
    if name not in CUDA_LOSSES:
        raise KeyError(f"unknown CUDA kernel {name!r}; known: {', '.join(sorted(CUDA_LOSSES))}")
    require_cuda()
    loss = CUDA_LOSSES[name]
    return make_kernel(loss, compile_module(loss, checked_in_source(name)))


@functools.lru_cache(maxsize=None)
def compile_cuda_loss(loss: Loss):
    """A user loss's kernel (e.g. ``Loss.from_formula``), generated and compiled at first use (cached on
    disk, and per process by the loss)."""
    from .generate import generate_cuda

    require_cuda()
    return make_kernel(loss, compile_module(loss, generate_cuda(loss)))


# --- calling ----------------------------------------------------------------------------------

def _address(tensor) -> int:
    return 0 if tensor is None else tensor.data_ptr()


def _aligned(tensor):
    """``tensor`` contiguous with a 16-byte aligned start (a fresh copy only when it is not)."""
    if tensor is None:
        return None
    tensor = tensor.contiguous()
    return tensor if tensor.data_ptr() % 16 == 0 else tensor.clone()


def _check_reduction(reduction: str) -> str:
    return semantics.check_reduction(reduction, REDUCTIONS)


class CudaKernel:
    """A compiled module of one loss: its parameters, cases and calling helpers."""

    def __init__(self, loss: Loss, module):
        self.loss, self.module = loss, module
        self.name = loss.name
        self.params = kernel_params(loss)
        self.cases = case_functions(loss)
        self.flags = tuple(a.name for a in loss.args if a.role is Role.FLAG)

    def __repr__(self):
        return f"<symxent CUDA kernel {self.name} ({self.loss.kind})>"

    def param_values(self, options) -> tuple:
        """``(values in Params order, values by name for case selection)``; scalar arguments default
        to 0, loss parameters are required."""
        options = dict(options or {})
        known = {p.field for p in self.params} | set(self.flags)
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"{self.name}: unknown option(s) {unknown}; known: {sorted(known)}")
        values = []
        for p in self.params:
            if p.field in options:
                values.append(float(options[p.field]))
            elif p.role == Role.SCALAR:  # a loss's scalar argument (default 0), not a user parameter
                values.append(0.0)
            else:
                raise TypeError(f"{self.name}: the parameter {p.field!r} is required")
        by_name = {p.field: v for p, v in zip(self.params, values)}
        by_name.update({f: options.get(f) for f in self.flags})
        return values, by_name

    def case_index(self, by_name: dict, backward: bool = False) -> int:
        """The first case whose conditions hold (``when`` pairs), for the forward or the backward."""
        for index, (when, is_backward) in enumerate(self.cases):
            if is_backward == backward and all(by_name.get(key) == value for key, value in when):
                return index
        raise ValueError(f"{self.name}: no generated case for {by_name}")

    def check_input(self, z, name="input", ndim=2):
        torch = _torch()
        if not isinstance(z, torch.Tensor) or z.device.type != "cuda":
            raise TypeError(f"{self.name}: {name} must be a CUDA tensor, got "
                            f"{type(z).__name__ if not isinstance(z, torch.Tensor) else z.device}")
        if z.dtype not in _dtype_codes():
            raise TypeError(f"{self.name}: the CUDA kernels take float32, float16 or bfloat16 {name}, got {z.dtype}")
        if ndim is not None and z.dim() != ndim:
            raise ValueError(f"{self.name}: {name} must be {ndim}-D, got shape {tuple(z.shape)}")

    @staticmethod
    def stream(device) -> int:
        return _torch().cuda.current_stream(device).cuda_stream


@dataclass(frozen=True)
class RowResult:
    """What a row kernel's forward returns: the reduced loss (input dtype), the per-row
    logsumexp (float32, or None) and the gradient (input dtype, or None)."""

    loss: object
    lse: object
    grad: object


class RowKernel(CudaKernel):
    """Row losses: index targets (cross_entropy, nll, user losses) or probability targets."""

    def __init__(self, loss, module):
        super().__init__(loss, module)
        roles = [a.role for a in loss.args]
        self.index_target = Role.INDEX in roles
        self.probability_target = roles.count(Role.ROWS) > 1
        self.has_weight = Role.CLASSES in roles

    def forward(self, z, target, weight=None, *, options=None, ignore_index=-100, reduction="mean",
                want_grad=True, inplace=False, return_lse=False) -> RowResult:
        """Loss of (R, C) logits ``z`` against ``target`` ((R,) int64 classes, or (R, C) probabilities),
        the gradient d loss / d z (``reduction`` applied, upstream 1) written to a new buffer or,
        with ``inplace``, into ``z`` itself. Out-of-range targets raise ``IndexError`` before
        anything is written."""
        torch = _torch()
        _check_reduction(reduction)
        self.check_input(z, "input")
        rows, cols = z.shape
        if weight is not None and not self.has_weight:
            raise TypeError(f"{self.name}: this loss takes no class weights")
        values, by_name = self.param_values(options)
        case = self.case_index(by_name)
        device = z.device
        with torch.cuda.device(device):
            keep = z
            z = _aligned(z)  # a copy only if z is not contiguous or not 16-byte aligned (then that copy is overwritten)
            w = _aligned(weight.detach().to(device=device, dtype=z.dtype)) if weight is not None else None
            if w is not None and tuple(w.shape) != (cols,):
                raise ValueError(f"{self.name}: weight must have shape ({cols},), got {tuple(w.shape)}")
            stream = self.stream(device)
            index = y = total = None
            if self.index_target:
                index = target.detach().to(device=device, dtype=torch.int64).contiguous()
                if tuple(index.shape) != (rows,):
                    raise ValueError(f"{self.name}: target must have shape ({rows},), got {tuple(index.shape)}")
                total = torch.empty(1, dtype=torch.float32, device=device)
            elif self.probability_target:
                y = _aligned(target.detach().to(device=device, dtype=z.dtype))
                if tuple(y.shape) != (rows, cols):
                    raise ValueError(f"{self.name}: target must have the input's shape {(rows, cols)}, "
                                     f"got {tuple(y.shape)}")
            # everything is allocated before the one synchronisation below, so that the rows kernel
            # follows the target check as closely as possible
            status = torch.full((1,), -1, dtype=torch.int64, device=device)
            loss_rows = torch.empty(rows, dtype=torch.float32, device=device)
            lse = torch.empty(rows, dtype=torch.float32, device=device) if return_lse else None
            grad = (z if inplace else torch.empty_like(z)) if want_grad else None
            # mean: index targets divide by the total weight W of the counted rows (from prepare),
            # probability targets by the number of rows
            denom = total if (reduction == "mean" and self.index_target) else None
            factor = (1.0 / rows if rows else math.nan) if (reduction == "mean" and not self.index_target) else 1.0
            dtype = _dtype_codes()[z.dtype]
            if self.index_target:
                self.module.prepare(dtype, _address(index), _address(w), rows, cols, int(ignore_index),
                                    _address(total), _address(status), stream)
                bad = int(status.item())  # the one sync: targets are checked before anything is written
                if bad >= 0:
                    raise semantics.target_out_of_bounds(index[bad].item())
                if reduction == "mean" and by_name.get("lse_square_scale"):
                    # Liger-Kernel's z-loss: mean divides it by the counted rows, the cross-entropy by W
                    counted = int((index != int(ignore_index)).sum().item())
                    scale = semantics.z_loss_scale(by_name["lse_square_scale"], "mean", False, float(total.item()),
                                                   counted)
                    values, by_name = self.param_values({**(options or {}), "lse_square_scale": scale})
                    case = self.case_index(by_name)
            self.module.rows(case, dtype, _address(z), _address(y), _address(w), _address(index), _address(grad),
                             _address(loss_rows), _address(lse), _address(denom), factor, _address(status), rows,
                             cols, int(ignore_index), bool(return_lse), values, stream)
            if reduction == "none":
                loss = loss_rows.to(keep.dtype)
            elif reduction == "sum":
                loss = loss_rows.sum().to(keep.dtype)
            elif self.index_target:
                loss = (loss_rows.sum() / total[0]).to(keep.dtype)
            else:
                loss = (loss_rows.sum() / rows if rows else loss_rows.sum() * math.nan).to(keep.dtype)
        return RowResult(loss, lse, grad)

    def backward(self, grad, grad_output):
        """``grad[r, :] *= grad_output[r]`` (or by a scalar ``grad_output``) in place; returns ``grad``.
        A factor of exactly 1 leaves a row untouched without reading it."""
        torch = _torch()
        rows, cols = grad.shape
        go = grad_output.detach().to(device=grad.device, dtype=torch.float32).reshape(-1).contiguous()
        if go.numel() not in (1, rows):
            raise ValueError(f"{self.name}: grad_output has {go.numel()} values for {rows} rows")
        with torch.cuda.device(grad.device):
            self.module.scale_rows(_dtype_codes()[grad.dtype], _address(grad), _address(go),
                                   0 if go.numel() == 1 else 1, rows, cols, self.stream(grad.device))
        return grad


class MapKernel(CudaKernel):
    """Row maps (softmax, log_softmax) and their vector-Jacobian products."""

    def _run(self, x, y, backward: bool):
        torch = _torch()
        values, by_name = self.param_values({})
        case = self.case_index(by_name, backward=backward)
        with torch.cuda.device(x.device):
            x = _aligned(x)
            y = _aligned(y.detach().to(device=x.device, dtype=x.dtype)) if y is not None else None
            out = torch.empty_like(x)
            self.module.rows(case, _dtype_codes()[x.dtype], _address(x), _address(y), 0, 0, _address(out), 0, 0, 0,
                             1.0, 0, x.shape[0], x.shape[1], -100, False, values, self.stream(x.device))
        return out

    def forward(self, z):
        """The map of each row of (R, C) ``z``."""
        self.check_input(z, "input")
        return self._run(z.detach(), None, backward=False)

    def backward(self, out, grad_output):
        """grad_input of each row from the forward's output and the upstream gradient (both (R, C))."""
        self.check_input(out, "out")
        if tuple(grad_output.shape) != tuple(out.shape):
            raise ValueError(f"{self.name}: grad_output shape {tuple(grad_output.shape)} != {tuple(out.shape)}")
        return self._run(out.detach(), grad_output, backward=True)


class ElementwiseKernel(CudaKernel):
    """Elementwise losses (bce, bce_with_logits, kl_div): inputs by argument name."""

    def __init__(self, loss, module):
        super().__init__(loss, module)
        self.inputs = tuple(a.name for a in loss.args if a.role is Role.ELEMENTS)

    def forward(self, inputs: dict, *, options=None, reduction="none", want_grad=True):
        """``inputs``: the element arguments by name (:attr:`inputs`); the first defines the shape; the
        others have its number of elements, or one per last-dimension entry (broadcast over the
        leading dimensions), or one value; an argument whose name contains ``weight`` may be None (1).
        Returns ``(loss, grad)``: the loss reduced, d loss / d first input (``reduction`` applied)."""
        torch = _torch()
        _check_reduction(reduction)
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            raise TypeError(f"{self.name}: unknown input(s) {unknown}; inputs: {list(self.inputs)}")
        x = inputs.get(self.inputs[0])
        self.check_input(x, self.inputs[0], ndim=None)
        x = x.contiguous()  # the kernel writes loss and grad in x's element order: keep that order row-major
        values, by_name = self.param_values(options)
        case = self.case_index(by_name)
        numel = x.numel()
        last = x.shape[-1] if x.dim() else 1
        with torch.cuda.device(x.device):
            tensors, periods = [], []
            for name in self.inputs:
                value = inputs.get(name)
                if value is None:
                    if "weight" not in name:
                        raise TypeError(f"{self.name}: input {name!r} is required")
                    value = torch.ones(1, dtype=x.dtype, device=x.device)
                value = torch.as_tensor(value, device=x.device).detach().to(x.dtype).contiguous()
                count = value.numel()
                full = tuple(value.shape) == tuple(x.shape)
                if not (full or count == 1 or (value.dim() == 1 and count == last)):
                    raise ValueError(f"{self.name}: {name} must have the input's shape {tuple(x.shape)}, the shape "
                                     f"({last},) of its last dimension, or one value; got {tuple(value.shape)} "
                                     f"(expand it first)")
                count = numel if full else count
                tensors.append(value.reshape(-1))
                periods.append(count)
            tensors += [None] * (4 - len(tensors))
            periods += [1] * (4 - len(periods))
            loss = torch.empty_like(x) if reduction == "none" else None
            sms = torch.cuda.get_device_properties(x.device).multi_processor_count
            blocks = max(1, min((numel + 255) // 256, 4 * sms))
            partial = torch.zeros(blocks, dtype=torch.float32, device=x.device) if reduction != "none" else None
            grad = torch.empty_like(x) if want_grad else None
            factor = (1.0 / numel if numel else math.nan) if reduction == "mean" else 1.0
            args = []
            for tensor, period in zip(tensors, periods):
                args += [_address(tensor), period]
            self.module.elementwise(case, _dtype_codes()[x.dtype], *args, _address(loss), _address(partial), blocks,
                                    _address(grad), factor, numel, values, self.stream(x.device))
            if reduction == "sum":
                loss = partial.sum().to(x.dtype)
            elif reduction == "mean":
                loss = (partial.sum() / numel if numel else partial.sum() * math.nan).to(x.dtype)
        return loss, grad
