"""Fused linear + cross-entropy: ``cross_entropy(input @ linear_weight.T + linear_bias, target)`` without the
N x C logits ever existing in full.

The rows are taken in chunks. Per chunk: the projection ``z = h W^T + b`` (in the input's dtype, upcast to
float32 for half inputs), the optional tanh soft-capping ``z <- s tanh(z / s)``, the generated row kernel
(the same one ``symxent.functional.cross_entropy`` runs, or a user's :class:`symxent.Loss`) returning each
row's loss and ``g = d loss_row / d z``, then, scaled by the row's share of the reduced loss,
``grad_input[rows] = g W`` and ``grad_weight += g^T h``, ``grad_bias += sum_rows g``. Why that is the gradient
of the whole loss: the catalogue's rows ``linear_logits_chain_rule`` (one row, symbolic classes and
features) and ``shard_sum_partition`` (a sum over rows is the sum over chunks of any sizes), with ``mean``'s
``1/W`` a constant of the chunks, computed from the targets before the first one runs. Under ``mean`` and
``sum`` the forward pass computes the gradients and the backward pass only scales them by ``grad_output``
(in place: the backward runs once, unless torch's ``options.allow_retain_graph``; double backward is refused);
under ``none`` the backward recomputes the chunks with the per-row ``grad_output``.

Memory beyond the inputs and the gradients: one chunk's buffers (its logits and their gradient, in float32;
one more with soft-capping), ``chunk_size`` rows of them, chosen from N, C and :data:`CHUNK_BUDGET_BYTES`
when not given (:func:`automatic_chunk_rows`). The row kernel per backend: ``"c"`` (CPU tensors, the generated C kernel through NumPy views,
the default on CPU), ``"torch"`` (the generated torch kernel, any device), ``"cuda"`` (CUDA tensors, the
generated CUDA kernel, the default there), ``"triton"`` (the generated Triton kernel: CUDA tensors, or CPU ones under
``TRITON_INTERPRET=1``; the gradient written into the chunk's logits). Everything runs inside torch custom ops
(``symxent::linear_cross_entropy`` and its ``_backward``), so ``torch.compile(fullgraph=True)`` traces it.
"""
from __future__ import annotations

import hashlib
import math

import torch
from torch import Tensor

from .. import semantics as sem
from .dispatch import kernel as generated_kernel
from .torch_ops import prob_target_grads, work_dtype

#: the default bytes of one chunk's two float32 buffers, its logits and their gradient (soft-capping adds a third:
#: the chunk keeps its rows, as fewer rows make the matmuls slower)
CHUNK_BUDGET_BYTES = 32 << 20
#: ... or this share of the float32 gradients' bytes (N D + C D), when larger: big problems get rows enough for
#: efficient matmuls (80 rows at C = 50257 ran 1.1x the unfused reference; torch's chunked path takes ~300)
GRADIENT_SHARE = 0.25
CHUNK_BACKENDS = ("c", "torch", "cuda", "triton")
_HALF = (torch.float16, torch.bfloat16)
#: user losses by key (a custom op takes strings, not objects): key -> Loss; their parameter values travel in the
#: op's ``options``, in the loss's parameter order, so a schedule of values registers nothing new
_USER_LOSSES: dict = {}


# --- argument checks (torch's wording where torch has one) ------------------------------------------

def _check_shapes(input, linear_weight, linear_bias):
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), "
                           f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got "
                           f"{tuple(linear_bias.shape)}")
    if out_features and input.dim() == 1:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires"
                           f" batched input, (N, {in_features}), got unbatched input with shape {tuple(input.shape)}")
    return num_classes, out_features


def _check_dtypes_and_devices(input, linear_weight, linear_bias):
    for name, value in (("input", input), ("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if value is not None and not value.is_floating_point():
            raise RuntimeError(f"linear_cross_entropy: {name} must be a floating-point tensor, got "
                               f"{sem.dtype_name(value.dtype)}")
    if linear_weight.dtype != input.dtype or (linear_bias is not None and linear_bias.dtype != input.dtype):
        other = linear_weight.dtype if linear_weight.dtype != input.dtype else linear_bias.dtype
        raise RuntimeError(f"expected mat1 and mat2 to have the same dtype, but got: {sem.dtype_name(input.dtype)} "
                           f"!= {sem.dtype_name(other)}")
    devices = {t.device for t in (input, linear_weight, linear_bias) if t is not None}
    if len(devices) > 1:
        raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                           f"{', '.join(sorted(map(str, devices)))}!")


def _softcap_value(softcap) -> float:
    """0.0 for no soft-capping, else the cap: a finite number > 0."""
    if softcap is None:
        return 0.0
    value = float(softcap)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"softcap must be None or a finite number > 0, got {softcap!r}")
    return value


def _chunk_rows(chunk_size, options) -> int:
    """The chunk size asked for (``chunk_size``, else torch's ``options.batch_chunk_size``), 0 for automatic."""
    if options is not None and chunk_size is None:
        if not hasattr(options, "batch_chunk_size"):
            raise TypeError(f"options must be a torch.nn.LinearCrossEntropyOptions or None, got "
                            f"{type(options).__name__}")
        chunk_size = options.batch_chunk_size
    if chunk_size is None:
        return 0
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    return chunk_size


def automatic_chunk_rows(rows: int, classes: int, features: int = 0, buffers: int = 2) -> int:
    """Rows per chunk: as many as fit ``buffers`` float32 ``(rows, classes)`` buffers in the budget, the larger of
    :data:`CHUNK_BUDGET_BYTES` and :data:`GRADIENT_SHARE` of the float32 gradients of the input and the weight
    (at least 1 row, at most ``rows``), rounded down to a multiple of 8 when that leaves at least 8."""
    budget = max(CHUNK_BUDGET_BYTES, int(GRADIENT_SHARE * 4 * (rows + classes) * features))
    fit = max(1, budget // (4 * max(classes, 1) * buffers))
    if fit >= 8:
        fit -= fit % 8
    return max(1, min(max(rows, 1), fit))


def _backend(backend, input) -> str:
    if backend is None:
        return "cuda" if input.is_cuda else "c"
    if backend not in CHUNK_BACKENDS:
        raise ValueError(f"unknown backend {backend!r} for linear_cross_entropy; expected one of "
                         f"{', '.join(map(repr, CHUNK_BACKENDS))}")
    if backend == "cuda" and not input.is_cuda:
        raise TypeError("backend='cuda' takes CUDA tensors; use backend='c' or 'torch' for CPU tensors")
    if backend == "triton":
        from .dispatch import check_triton
        check_triton(input)
    if backend == "c" and input.device.type != "cpu":
        raise TypeError(f"backend='c' takes CPU tensors, not {input.device.type} tensors; use backend='torch' or "
                        f"'cuda'")
    return backend


def _user_loss(loss, params) -> tuple:
    """``(key, values)``: a user's :class:`symxent.Loss` registered under a key the op can take, and its parameter
    values in the loss's order."""
    if getattr(loss, "kind", None) != "row":
        raise TypeError(f"loss must be a row loss (symxent.Loss.from_formula / from_expr), got {loss!r}")
    params = {name: float(value) for name, value in dict(params or {}).items()}
    missing = [p.name for p in loss.params if p.name not in params]
    unknown = sorted(set(params) - {p.name for p in loss.params})
    if missing or unknown:
        raise ValueError(f"loss {loss.name!r} takes the parameters {[p.name for p in loss.params]}; "
                         f"missing {missing}, unknown {unknown}")
    text = repr((loss.name, str(loss.cases), [p.name for p in loss.params]))
    key = f"user:{loss.name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    _USER_LOSSES.setdefault(key, loss)
    return key, [params[p.name] for p in loss.params]


# --- the public function ---------------------------------------------------------------------------

def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None, lse_square_scale=0.0, softcap=None,
                         loss=None, loss_params=None, chunk_size=None, backend=None):
    r"""``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``, chunked over rows: the logits
    never exist in full. torch's signature first (``torch.nn.functional.linear_cross_entropy``: input ``(D,)`` or
    ``(N, D)``, linear_weight ``(C, D)`` or ``(C, d1..dK, D)``, index or probability targets, ``ignore_index=None``
    meaning -100 for index targets, torch's ``options`` accepted, its ``batch_chunk_size`` used), then:

    - ``lse_square_scale``: the z-loss as in :func:`symxent.functional.cross_entropy`;
    - ``softcap`` :math:`s`: the logits soft-capped as in Gemma 2, :math:`z \leftarrow s \tanh(z / s)`, before the
      loss (gradient factor :math:`1 - \tanh^2(z/s)`);
    - ``loss``: a user row loss (:class:`symxent.Loss`, e.g. ``Loss.from_formula("-(1 - softmax(z)[c])**gamma *
      log_softmax(z)[c]")``) instead of cross-entropy, with ``loss_params`` (``{"gamma": 2.0}``); index targets,
      no class weight, label smoothing or z-loss (write them into the formula); ``mean`` divides by the counted rows;
    - ``chunk_size``: rows per chunk (default: from :data:`CHUNK_BUDGET_BYTES`); ``backend``: the row kernel,
      ``"c"`` (CPU default), ``"torch"``, ``"cuda"`` (CUDA default), ``"triton"``.

    Differentiable with respect to ``input``, ``linear_weight`` and ``linear_bias`` (float32 accumulation of the
    weight gradient over the chunks, for every dtype), and, as torch, a probability target and its class weights
    (the generated ``cross_entropy_prob_target`` / ``_weight`` kernels on each chunk's logits: distillation with a
    trainable teacher).
    """
    if not all(isinstance(t, Tensor) for t in (input, linear_weight, target)):
        raise TypeError("linear_cross_entropy takes torch tensors (input, linear_weight, target)")
    reduction = sem.check_reduction(reduction)
    num_classes, out_features = _check_shapes(input, linear_weight, linear_bias)
    out_dtype = input.dtype
    if torch.is_autocast_enabled(input.device.type):  # torch's policy: the projection in the autocast dtype,
        low = torch.get_autocast_dtype(input.device.type)  # cross_entropy in float32
        input, linear_weight = input.to(low), linear_weight.to(low)
        linear_bias = linear_bias.to(low) if linear_bias is not None else None
        out_dtype = torch.float32
    _check_dtypes_and_devices(input, linear_weight, linear_bias)
    backend = _backend(backend, input)
    batched = input.dim() == 2
    logits_shape = ((input.shape[0],) if batched else ()) + (num_classes, *out_features)
    probability = tuple(target.shape) == logits_shape
    if probability and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"linear_cross_entropy(): argument 'ignore_index' must be int, not "
                        f"{type(ignore_index).__name__}")
    ignore_index = -100 if ignore_index is None else ignore_index
    if probability:
        layout = sem.probability_target_layout(logits_shape, target.dtype, ignore_index)
    else:
        layout = sem.index_target_layout(logits_shape, target.shape, target.dtype)
    sem.check_class_weight(weight, num_classes, input.dtype, probability=probability)
    if not probability:  # torch differentiates a probability target and its weight, not these weights
        sem.check_differentiable(sem.nll_forward_name(len(logits_shape)), weight=weight)
    eps = sem.label_smoothing_value(label_smoothing)
    z_scale = sem.lse_square_scale_value(lse_square_scale)
    cap = _softcap_value(softcap)
    chunk = _chunk_rows(chunk_size, options)
    if loss is not None:
        if probability or weight is not None or eps or z_scale:
            raise ValueError("linear_cross_entropy with loss=: index targets only, and no weight, label_smoothing or "
                             "lse_square_scale (write them into the loss's formula)")
        kernel, scalars = _user_loss(loss, loss_params)
    else:
        if loss_params is not None:
            raise ValueError("loss_params is for a user loss (loss=...)")
        kernel, scalars = ("cross_entropy_prob" if probability else "cross_entropy"), [eps, z_scale]

    positions = math.prod(out_features)
    h = input if batched else input.unsqueeze(0)
    w3 = linear_weight.reshape(num_classes, positions, linear_weight.shape[-1])
    b2 = linear_bias.reshape(num_classes, positions) if linear_bias is not None else h.new_zeros(0)
    if probability:  # (N, C, d..) -> (N, C, P)
        t = target.reshape(h.shape[0], num_classes, positions)
    else:
        t = target.reshape(h.shape[0], positions).to(torch.int64)  # its range is checked in the op (data-dependent)
    work = work_dtype(input.dtype)
    w = (torch.ones(num_classes, dtype=work, device=input.device) if weight is None
         else (weight if probability else weight.detach()).to(device=input.device, dtype=work))
    if not chunk:
        chunk = automatic_chunk_rows(h.shape[0], num_classes, h.shape[1])
    differentiated = (input, linear_weight, linear_bias) + ((target, weight) if probability else (None, None))
    wants = [torch.is_grad_enabled() and x is not None and x.requires_grad for x in differentiated]
    retain = bool(getattr(options, "allow_retain_graph", False))
    out = linear_cross_entropy_chunks(h, w3, b2, t, w, ignore_index, scalars, cap, kernel, backend, chunk,
                                      reduction, wants, retain)[0]
    if probability:  # torch promotes with the target's (and the weight's) dtype
        out_dtype = torch.promote_types(out_dtype, target.dtype)
        out_dtype = torch.promote_types(out_dtype, weight.dtype) if weight is not None else out_dtype
    if reduction == "none":
        return out.reshape(layout.out_shape).to(out_dtype)
    return out.to(out_dtype)


# --- the chunked computation -----------------------------------------------------------------------

def _row_kernel(kernel: str, backend: str):
    """``f(z, target_rows, weight, scalars, want_grad) -> (loss (R,), grad (R, C) or None)`` for one chunk."""
    if kernel.startswith("user:"):
        user = _USER_LOSSES[kernel]
        if backend == "cuda":
            from symxent.codegen.cuda.generate import compile_cuda_loss
            return _cuda_row_kernel(compile_cuda_loss(user), user=True)
        from symxent.codegen.driver import compile_loss
        fn = compile_loss(user, backend)
        if backend == "c":
            def call(z, t, w, params, want_grad):
                loss, grad = fn(z.numpy(), t.numpy(), params, want_grad)
                return torch.from_numpy(loss), None if grad is None else torch.from_numpy(grad)
            return call
        return lambda z, t, w, params, want_grad: fn(z, t, params, want_grad)
    if backend == "cuda":
        from symxent.runtime.cuda import load_cuda_kernel
        return _cuda_row_kernel(load_cuda_kernel(kernel))
    fn = generated_kernel(kernel, backend)
    if backend == "c":
        def call(z, t, w, scalars, want_grad):
            loss, grad = fn(z.numpy(), t.numpy(), w.numpy(), **scalars, want_grad=want_grad)[:2]  # (no lse)
            return torch.from_numpy(loss), None if grad is None else torch.from_numpy(grad)
        return call

    def call(z, t, w, scalars, want_grad):
        into = dict(out=z) if backend == "triton" else {}  # triton: the gradient into the chunk's logits buffer
        loss, grad = fn(z, t, w, **scalars, want_grad=want_grad, **into)[:2]  # (no lse)
        return loss, grad
    return call


def _cuda_row_kernel(cuda_kernel, user=False):
    """A chunk through the CUDA runtime: per-row loss, the gradient written into the chunk's logits buffer."""
    def call(z, t, w, scalars, want_grad):
        result = cuda_kernel.forward(z, t, None if user else w, options=dict(scalars), reduction="none",
                                     want_grad=want_grad, inplace=True)
        return result.loss, result.grad
    return call


def _denominators(t, w, ignore_index, probability):
    """``(mask (N, P) or None, W, counted)``: the rows that count (None: all), the summed weight of their targets
    (``mean``'s divisor for index targets) and their number; torch's IndexError for a target out of range
    (:func:`symxent.semantics.index_rows`)."""
    if probability:
        rows = t.shape[0] * t.shape[2]
        return None, float(rows), rows
    _, ignored, row_weight = sem.index_rows(torch, t, w.shape[0], ignore_index, w)
    total = row_weight.sum(dtype=torch.float64)
    return (None, total, t.numel()) if ignored is None else (~ignored, total, (~ignored).sum())


def run_chunks(h, w3, b2, t, w, ignore_index, scalars, cap, row_kernel, chunk, row_scale, wants, want_loss,
               target_grads=None):
    """Run every chunk through ``row_kernel`` (:func:`_row_kernel`'s signature): the per-row losses (N, P) when
    ``want_loss`` (0 on ignored rows), and, where ``row_scale`` (N, P) is given, the gradients
    ``(grad_h, grad_w3, grad_b2)`` of ``sum(row_scale * loss_rows)`` (None where not ``wants``).
    ``target_grads`` (:class:`TargetGrads`, probability targets): also accumulates the gradients by the targets
    and the class weights, from each chunk's (capped) logits before the row kernel reuses them."""
    rows, positions = h.shape[0], w3.shape[1]
    probability = t.dim() == 3
    work = work_dtype(h.dtype)
    losses = torch.zeros((rows, positions), dtype=work, device=h.device) if want_loss else None
    grads = row_scale is not None and any(wants)
    half = h.dtype in _HALF
    # half inputs: grad_h in float32, each chunk's g @ W scaled by the rows' shares only after the half matmul
    # (g / N in float16 underflows before a loss scale could rescue it)
    grad_h = torch.zeros(h.shape, dtype=work, device=h.device) if grads and wants[0] else None
    grad_w = torch.zeros(w3.shape, dtype=work, device=h.device) if grads and wants[1] else None
    grad_b = torch.zeros(b2.shape, dtype=work, device=h.device) if grads and wants[2] else None
    # the chunk's buffers, allocated once (fresh ones per chunk fragment the heap: peak memory varied by a third)
    shape = (min(chunk, rows), w3.shape[0])
    logits = torch.empty(shape, dtype=work, device=h.device)
    capped = torch.empty(shape, dtype=work, device=h.device) if cap else None
    for p in range(positions):
        wp = w3[:, p, :]
        for lo in range(0, rows, chunk):
            hi = min(rows, lo + chunk)
            hc = h[lo:hi]
            z = logits[:hi - lo]
            if h.dtype == work:
                torch.mm(hc, wp.t(), out=z)
            else:  # the projection in the input's dtype (as torch's), then float32
                z.copy_(torch.mm(hc, wp.t()))
            if b2.numel():
                z += b2[:, p]
            u = None
            if cap:  # z <- s tanh(z / s); u = tanh(z / s) kept for the factor 1 - u^2 of the gradient
                u = z.div_(cap).tanh_()
                z = torch.mul(u, cap, out=capped[:hi - lo])
            if probability:
                target = t[lo:hi, :, p].to(work).contiguous()
            else:
                target = t[lo:hi, p]
                target = torch.where(target == ignore_index, 0, target).contiguous()
            if target_grads is not None and row_scale is not None:
                target_grads.add(z, target, w, row_scale[lo:hi, p, None].to(work), lo, hi, p)
            loss_rows, g = row_kernel(z, target, w, scalars, grads)
            if want_loss:
                if not probability:
                    loss_rows = torch.where(t[lo:hi, p] == ignore_index, 0, loss_rows)
                losses[lo:hi, p] = loss_rows
            if not grads:
                continue
            share = row_scale[lo:hi, p, None].to(work)
            if u is not None:  # g (1 - u^2) = g - g u^2, in place (two passes, no temporary)
                g.addcmul_(g, u.square_(), value=-1)
            if grad_h is not None and half:
                grad_h[lo:hi] += torch.mm(g.to(h.dtype), wp).to(work).mul_(share)
            g.mul_(share)
            if grad_h is not None and not half:
                grad_h[lo:hi].addmm_(g, wp)
            if grad_b is not None:
                grad_b[:, p] += g.sum(0)
            if grad_w is not None:
                grad_w[:, p, :].addmm_(g.t(), hc.to(work))
            del z, g, u
    return losses, grad_h, grad_w, grad_b


class TargetGrads:
    """The gradients of ``sum(row_scale * loss_rows)`` by probability targets ``t`` (N, C, P) and class weights
    ``w`` (C,), for cross_entropy_prob: per chunk, the torch backend's :func:`~.torch_ops.prob_target_grads`
    (``-(1 - eps) w_k log softmax_k`` and ``-((1 - eps) y_k + eps/C) log softmax_k``, generated) scaled by each
    row's share; None where not wanted."""

    def __init__(self, t, w, eps, want_target, want_weight, dtype):
        self.eps = eps
        self.target = torch.zeros(t.shape, dtype=dtype, device=t.device) if want_target else None
        self.weight = torch.zeros(w.shape, dtype=dtype, device=t.device) if want_weight else None

    def add(self, z, y, w, share, lo, hi, p):
        grad_y, grad_w = prob_target_grads(z, y, w.to(z.dtype), self.eps, self.target is not None,
                                           self.weight is not None)
        if self.target is not None:
            self.target[lo:hi, :, p] = grad_y.mul_(share)
        if self.weight is not None:
            self.weight += grad_w.mul_(share).sum(0)


#: the backends whose chunks are soft-capped inside the generated kernel (``cross_entropy_softcap``). On the CPU the
#: chunk loop's torch passes around the kernel are faster (benchmarks/README.md: tanh once per element, vectorized,
#: against libm's tanhf in each of the C kernel's passes: 3.1 s against 5.8 s at 4096 x 1024 x 32000); on a GPU the
#: kernel saves the passes over the chunk's logits (an estimate: not measured yet)
SOFTCAP_IN_KERNEL = frozenset({"cuda", "triton"})


def _capped_kernel(kernel: str, scalars: dict, softcap: float, backend: str):
    """``(kernel, scalars, cap left to the chunk loop)``: cross-entropy with index targets soft-capped by its generated
    kernel (``cross_entropy_softcap``: the capping and its gradient factor in the row sweep) on the backends of
    :data:`SOFTCAP_IN_KERNEL`; anything else (another backend, a probability target, a user loss) capped around the
    kernel by the chunk loop."""
    if softcap and kernel == "cross_entropy" and backend in SOFTCAP_IN_KERNEL:
        return "cross_entropy_softcap", {**scalars, "softcap": softcap}, 0.0
    return kernel, scalars, softcap


def _scalars(options, reduction, probability, total, counted, kernel):
    """The row kernel's scalar arguments by name: a user loss's parameters, or cross_entropy's options rescaled
    for the reduction (:data:`symxent.semantics.KERNEL_OPTIONS`)."""
    if kernel.startswith("user:"):
        return {p.name: value for p, value in zip(_USER_LOSSES[kernel].params, options)}
    names = dict(zip(sem.KERNEL_OPTIONS, options))
    return sem.kernel_option_values(names, reduction, probability, total, counted)


@torch.library.custom_op("symxent::linear_cross_entropy", mutates_args=())
def linear_cross_entropy_chunks(h: Tensor, w3: Tensor, b2: Tensor, t: Tensor, w: Tensor, ignore_index: int,
                                options: list[float], softcap: float, kernel: str, backend: str, chunk: int,
                                reduction: str, wants: list[bool],
                                retain_graph: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(loss, grad_h, grad_w3, grad_b2, grad_t, grad_w)``: the reduced loss (or the rows (N, P) for ``none``) and,
    for ``mean`` / ``sum`` with ``wants`` (h, w3, b2, and for probability targets t and w), the gradients for
    upstream 1 (empty where not computed). ``h`` (N, D), ``w3`` (C, P,
    D), ``b2`` (C, P) or empty, ``t`` (N, P) class indices or (N, C, P) probabilities, ``w`` (C,) class weights;
    ``options`` in :data:`symxent.semantics.KERNEL_OPTIONS`' order, as given (rescaled here for ``mean``), or a user
    loss's parameter values; ``retain_graph``: the backward keeps the gradients (torch's ``allow_retain_graph``)."""
    probability = t.dim() == 3
    user = kernel.startswith("user:")
    keep, total, counted = _denominators(t, w, ignore_index, probability)  # checks the targets, before any work
    if user and reduction == "mean":
        total = counted  # a user loss has no class weights: mean over the counted rows
    scalars = _scalars(options, reduction, probability, total, counted, kernel)
    kernel, scalars, softcap = _capped_kernel(kernel, scalars, softcap, backend)
    row_scale = None
    targets = _target_grads(t, w, options, kernel, wants) if reduction != "none" else None
    if reduction != "none" and any(wants):  # each row's share of the reduced loss; ignored rows 0
        share = 1.0 if reduction == "sum" else 1.0 / torch.as_tensor(total, dtype=torch.float64, device=h.device)
        row_scale = torch.full((t.shape[0], t.shape[-1]), 1.0, dtype=torch.float64, device=h.device) * share
        if keep is not None:
            row_scale = torch.where(keep, row_scale, 0.0)
    losses, gh, gw, gb = run_chunks(h, w3, b2, t, w, ignore_index, scalars, softcap, _row_kernel(kernel, backend),
                                    chunk, row_scale, wants[:3], True, targets)
    if reduction == "none":
        out = losses
    else:
        out = losses.sum(dtype=torch.float64)
        if reduction == "mean":
            out = out / total
        out = out.to(losses.dtype)
    gt, gwc = (targets.target, targets.weight) if targets is not None else (None, None)
    return out, _or_empty(gh, h), _or_empty(gw, h), _or_empty(gb, h), _or_empty(gt, h), _or_empty(gwc, h)


def _target_grads(t, w, options, kernel, wants):
    """The accumulators of the gradients by probability targets and class weights, when wanted (else None)."""
    if t.dim() != 3 or not any(wants[3:]) or kernel.startswith("user:"):
        return None
    eps = dict(zip(sem.KERNEL_OPTIONS, options))["label_smoothing"]
    return TargetGrads(t, w, eps, wants[3], wants[4], work_dtype(w.dtype))


@torch.library.custom_op("symxent::linear_cross_entropy_backward", mutates_args=())
def linear_cross_entropy_backward(h: Tensor, w3: Tensor, b2: Tensor, t: Tensor, w: Tensor, ignore_index: int,
                                  options: list[float], softcap: float, kernel: str, backend: str, chunk: int,
                                  grad_rows: Tensor, wants: list[bool]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``reduction="none"``'s backward: the chunks again, each row's gradient scaled by ``grad_rows`` (N, P)."""
    probability = t.dim() == 3
    keep, _, _ = _denominators(t, w, ignore_index, probability)
    scalars = _scalars(options, "none", probability, 1.0, 1, kernel)
    kernel, scalars, softcap = _capped_kernel(kernel, scalars, softcap, backend)
    scale = grad_rows if keep is None else grad_rows * keep
    targets = _target_grads(t, w, options, kernel, wants)
    _, gh, gw, gb = run_chunks(h, w3, b2, t, w, ignore_index, scalars, softcap, _row_kernel(kernel, backend), chunk,
                               scale, wants[:3], False, targets)
    gt, gwc = (targets.target, targets.weight) if targets is not None else (None, None)
    return _or_empty(gh, h), _or_empty(gw, h), _or_empty(gb, h), _or_empty(gt, h), _or_empty(gwc, h)


def _or_empty(value, like):
    return like.new_empty(0) if value is None else value


@linear_cross_entropy_chunks.register_fake
def _(h, w3, b2, t, w, ignore_index, options, softcap, kernel, backend, chunk, reduction, wants, retain_graph):
    work = work_dtype(h.dtype)
    out = h.new_empty((h.shape[0], w3.shape[1]) if reduction == "none" else (), dtype=work)
    grads = reduction != "none"
    return (out,) + _fake_grads(h, w3, b2, t, w, kernel, [grads and want for want in wants])


@linear_cross_entropy_backward.register_fake
def _(h, w3, b2, t, w, ignore_index, options, softcap, kernel, backend, chunk, grad_rows, wants):
    return _fake_grads(h, w3, b2, t, w, kernel, wants)


def _fake_grads(h, w3, b2, t, w, kernel, wants):
    work = work_dtype(h.dtype)
    targets = t.dim() == 3 and not kernel.startswith("user:")
    return (h.new_empty(h.shape if wants[0] else (0,), dtype=work),
            h.new_empty(w3.shape if wants[1] else (0,), dtype=work),
            h.new_empty(b2.shape if wants[2] else (0,), dtype=work),
            h.new_empty(t.shape if targets and wants[3] else (0,), dtype=work_dtype(w.dtype)),
            h.new_empty(w.shape if targets and wants[4] else (0,), dtype=work_dtype(w.dtype)))


def _setup_context(ctx, inputs, output):
    h, w3, b2, t, w, ignore_index, options, softcap, kernel, backend, chunk, reduction, wants, retain_graph = inputs
    ctx.reduction, ctx.wants, ctx.retain_graph = reduction, wants, retain_graph
    ctx.call = (ignore_index, options, softcap, kernel, backend, chunk)
    ctx.mark_non_differentiable(*output[1:])  # else autograd would hand backward zeros of their size
    ctx.set_materialize_grads(False)
    if reduction == "none":
        ctx.save_for_backward(h, w3, b2, t, w)
    else:  # the gradients, computed by the forward pass: backward scales them (in place, once, unless retain_graph)
        ctx.grads = list(output[1:])


def _backward(ctx, grad_out, *unused):
    if ctx.reduction == "none":
        h, w3, b2, t, w = ctx.saved_tensors
        gh, gw, gb, gt, gwc = linear_cross_entropy_backward(h, w3, b2, t, w, *ctx.call, grad_out.contiguous(),
                                                            ctx.wants)
    else:
        if torch.is_grad_enabled():
            raise RuntimeError("symxent's linear_cross_entropy: double backward (create_graph=True) is not supported "
                               "with reduction 'mean' or 'sum' (its gradients are computed in the forward pass)")
        grads = getattr(ctx, "grads", None)
        if grads is None:
            raise RuntimeError("the backward of symxent's linear_cross_entropy can run once (its gradients, computed "
                               "in the forward pass, are scaled in place); pass options=torch.nn."
                               "LinearCrossEntropyOptions(allow_retain_graph=True) to keep them for retain_graph=True")
        if ctx.retain_graph:
            gh, gw, gb, gt, gwc = (g * grad_out.to(g.dtype) if g.numel() else g for g in grads)
        else:
            ctx.grads = None
            gh, gw, gb, gt, gwc = (g.mul_(grad_out.to(g.dtype)) if g.numel() else g for g in grads)
    out = [g if want else None for g, want in zip((gh, gw, gb, gt, gwc), ctx.wants)]
    return (*out,) + (None,) * 9


linear_cross_entropy_chunks.register_autograd(_backward, setup_context=_setup_context)
