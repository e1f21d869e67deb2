"""The functional API on backend="triton" under Triton's interpreter, against torch: a covering grid.

Run by tests/test_triton_interpreter.py in a child process with TRITON_INTERPRET=1 (read at import); prints one
line ``GRID <json>``: the cases run and the failures. Every option, reduction, dtype and shape edge appears at
least once and the options pairwise (not the full product: one interpreted call of (64, 1000) takes ~1 s).
Expected values: torch.nn.functional (in float64, rounded to the output dtype), and for the z-loss torch's
expression ``F.cross_entropy(x, t, ...) + s * (lse[keep]**2).sum() / keep.sum()``. Half precision: the kernels
load float16 / bfloat16 rows as they are and store the gradient row in that dtype; the interpreter converts
float32 -> bfloat16 by truncation (a GPU rounds to nearest), at most one bfloat16 ulp (2^-7 relative) more than
rounding, inside the bfloat16 tolerance used here (3e-2).
"""
import itertools
import json
import os
import sys

#: "cpu" (Triton's interpreter: CI) or "cuda" (natively, on a GPU: benchmarks/gpu_checks.sh)
DEVICE = os.environ.get("SYMXENT_TRITON_DEVICE", "cpu")
assert DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1 (or on cuda)"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import symxent.functional as S  # noqa: E402

torch.set_default_device(DEVICE)

TOL = {torch.float64: (1e-9, 1e-10), torch.float32: (2e-5, 2e-6), torch.float16: (4e-3, 4e-3),
       torch.bfloat16: (3e-2, 3e-2)}
failures, ran = [], 0


def gen(seed):
    return torch.Generator(device=DEVICE).manual_seed(seed)


def compare(label, ours, ref, dtype):
    global ran
    ran += 1
    rtol, atol = TOL[dtype]
    try:
        torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError as error:
        failures.append(f"{label}: {str(error).splitlines()[0]} {str(error).splitlines()[-1]}")


def run(label, ours_fn, ref_fn, leaves, dtype):
    """Loss and the gradient of every leaf: ours in ``dtype``, the reference in float64."""
    mine = [x.detach().to(dtype).requires_grad_() if x.is_floating_point() else x for x in leaves]
    ref = [x.detach().to(torch.float64).requires_grad_(x.is_floating_point()) if x.is_floating_point() else x
           for x in leaves]
    out, want = ours_fn(*mine), ref_fn(*ref)
    compare(label + " value", out, want, dtype)
    if out.requires_grad:
        g = torch.linspace(-1, 2, out.numel(), dtype=torch.float64).reshape(out.shape)
        grads = torch.autograd.grad(out, mine[0], g.to(out.dtype))
        want_grads = torch.autograd.grad(want, ref[0], g)
        compare(label + " grad", grads[0], want_grads[0], dtype)


def logits(shape, seed, extreme=False):
    x = torch.randn(shape, generator=gen(seed), dtype=torch.float64) * 3
    if extreme:
        x.view(-1)[::7] = 1e4
        x.view(-1)[3::11] = -1e4
    return x


# cross_entropy: shapes x options pairwise, every reduction and dtype at least once
SHAPES = [(6, 5), (3, 5000), (4, 1), (0, 7), (2, 5, 3)]  # 5000 > one class block (4096): the online merge
OPTIONS = [dict(), dict(weight=True), dict(label_smoothing=0.15), dict(ignore_index=1), dict(lse_square_scale=1e-3),
           dict(weight=True, label_smoothing=0.1, lse_square_scale=1e-3, ignore_index=2)]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
REDUCTIONS = ["mean", "sum", "none"]
for k, (shape, options) in enumerate(itertools.product(SHAPES, OPTIONS)):
    dtype, reduction = DTYPES[k % len(DTYPES)], REDUCTIONS[k % len(REDUCTIONS)]
    classes = shape[1]
    for probability in (False, True):
        if probability and "ignore_index" in options:
            continue
        x = logits(shape, k, extreme=(k % 3 == 0))
        if probability:
            target = torch.softmax(torch.randn(shape, generator=gen(100 + k), dtype=torch.float64), 1)
        else:
            target = torch.randint(0, classes, (shape[0],) + shape[2:], generator=gen(100 + k))
            if "ignore_index" in options and target.numel():
                target.view(-1)[::3] = options["ignore_index"] if options["ignore_index"] < classes else 0
        kwargs = dict(reduction=reduction, label_smoothing=options.get("label_smoothing", 0.0))
        if not probability:
            kwargs["ignore_index"] = options.get("ignore_index", -100)
        weight = torch.rand(classes, generator=gen(200 + k), dtype=torch.float64) + 0.5 if options.get("weight") else None
        scale = options.get("lse_square_scale", 0.0)

        def ours(x, target, weight=weight, kwargs=kwargs, scale=scale, dtype=dtype):
            w = weight.to(x.dtype if not probability else torch.float64).to(x.dtype) if weight is not None else None
            return S.cross_entropy(x, target.to(x.dtype) if probability else target, weight=w, backend="triton",
                                   lse_square_scale=scale, **kwargs)

        def reference(x, target, weight=weight, kwargs=kwargs, scale=scale):
            out = F.cross_entropy(x, target.to(x.dtype) if probability else target, weight=weight, **kwargs)
            if not scale:
                return out
            lse = torch.logsumexp(x.movedim(1, -1) if x.dim() > 2 else x, -1)
            keep = torch.ones_like(lse, dtype=torch.bool) if probability else target != kwargs["ignore_index"]
            if kwargs["reduction"] == "none":
                return out + scale * torch.where(keep, lse ** 2, 0)
            total = (lse[keep] ** 2).sum()
            return out + scale * (total / keep.sum() if kwargs["reduction"] == "mean" else total)

        run(f"cross_entropy {shape} {options} prob={probability} {dtype} {reduction}", ours, reference,
            [x, target], dtype)

# nll, softmax, log_softmax, the BCEs, kl_div
for k, dtype in enumerate(DTYPES):
    reduction = REDUCTIONS[k % 3]
    x = logits((5, 9), 300 + k, extreme=k == 1)
    t = torch.randint(0, 9, (5,), generator=gen(k))
    run(f"nll {dtype} {reduction}", lambda lp, t: S.nll_loss(lp, t, reduction=reduction, backend="triton"),
        lambda lp, t: F.nll_loss(lp, t, reduction=reduction), [torch.log_softmax(x, 1), t], dtype)
    for name in ("softmax", "log_softmax"):
        for dim in (1, 0):
            run(f"{name} dim={dim} {dtype}", lambda x: getattr(S, name)(x, dim, backend="triton"),
                lambda x: getattr(F, name)(x, dim), [x], dtype)
    p = torch.rand(4, 6, generator=gen(k), dtype=torch.float64).clamp(0.02, 0.98)
    u = torch.rand(4, 6, generator=gen(k + 9), dtype=torch.float64)
    w = torch.rand(6, generator=gen(k + 5), dtype=torch.float64) + 0.5
    run(f"bce {dtype} {reduction}", lambda p, u: S.binary_cross_entropy(p, u, weight=w.to(p.dtype), reduction=reduction,
                                                                        backend="triton"),
        lambda p, u: F.binary_cross_entropy(p, u, weight=w, reduction=reduction), [p, u], dtype)
    z = logits((4, 6), 400 + k, extreme=k == 2)
    run(f"bce_with_logits {dtype} {reduction}",
        lambda z, u: S.binary_cross_entropy_with_logits(z, u, pos_weight=w.to(z.dtype), reduction=reduction,
                                                       backend="triton"),
        lambda z, u: F.binary_cross_entropy_with_logits(z, u, pos_weight=w, reduction=reduction), [z, u], dtype)
    for log_target in (False, True):
        q = torch.softmax(logits((4, 6), 500 + k), 1)
        target = q.log() if log_target else q
        run(f"kl_div {dtype} log_target={log_target}",
            lambda lp, q: S.kl_div(lp, q, reduction="batchmean", log_target=log_target, backend="triton"),
            lambda lp, q: F.kl_div(lp, q, reduction="batchmean", log_target=log_target),
            [torch.log_softmax(logits((4, 6), 600 + k), 1), target], dtype)

# rows of -inf logits (but one finite): torch's values
x = torch.full((3, 6), float("-inf"), dtype=torch.float64)
x[:, 2] = torch.tensor([0.0, 5.0, -3.0], dtype=torch.float64)
run("cross_entropy -inf logits", lambda x: S.cross_entropy(x, torch.tensor([2, 2, 2]), backend="triton"),
    lambda x: F.cross_entropy(x, torch.tensor([2, 2, 2])), [x], torch.float32)

# inplace_backward: the loss and gradient are torch's, and the gradient is written into the logits' own buffer
for k, (probability, reduction, dtype) in enumerate([(False, "mean", torch.float32), (True, "sum", torch.bfloat16),
                                                      (False, "none", torch.float64)]):
    x = logits((5, 700), 700 + k, extreme=k == 0).to(dtype)
    target = (torch.softmax(torch.randn(5, 700, generator=gen(k), dtype=torch.float64), 1).to(dtype) if probability
              else torch.tensor([3, -100, 0, 699, 7]))
    kwargs = dict(reduction=reduction, label_smoothing=0.1)
    leaf = x.clone().requires_grad_()
    out = S.cross_entropy(leaf, target, backend="triton", inplace_backward=True, **kwargs)
    g = torch.linspace(-1, 2, out.numel(), dtype=torch.float64).reshape(out.shape).to(out.dtype)
    (grad,) = torch.autograd.grad(out, leaf, g)
    ref_leaf = x.to(torch.float64).requires_grad_()
    want = F.cross_entropy(ref_leaf, target.to(torch.float64) if probability else target, **kwargs)
    (want_grad,) = torch.autograd.grad(want, ref_leaf, g.to(torch.float64))
    label = f"inplace_backward prob={probability} {reduction} {dtype}"
    compare(label + " value", out.detach(), want, dtype)
    compare(label + " grad", grad, want_grad, dtype)
    ran += 1
    if leaf.detach().data_ptr() != grad.data_ptr() and not torch.equal(leaf.detach(), grad):
        failures.append(f"{label}: the gradient is not in the logits' buffer")

# linear_cross_entropy with the Triton row kernel (chunks smaller than N; the gradient written into each chunk)
for k, (kwargs, dtype) in enumerate([(dict(), torch.float32), (dict(label_smoothing=0.1, reduction="sum"), torch.float64),
                                     (dict(reduction="none"), torch.bfloat16)]):
    h = torch.randn(37, 16, generator=gen(800 + k), dtype=torch.float64)
    W = torch.randn(300, 16, generator=gen(900 + k), dtype=torch.float64) * 0.5
    t = torch.randint(0, 300, (37,), generator=gen(k))
    t[::5] = -100
    run(f"linear_cross_entropy {kwargs} {dtype}",
        lambda h, W: S.linear_cross_entropy(h, W, t, backend="triton", chunk_size=8, **kwargs),
        lambda h, W: F.cross_entropy(h @ W.T, t, **kwargs), [h, W], dtype)

# soft-capped inside the generated kernel (cross_entropy_softcap), with the other options
for k, (kwargs, dtype) in enumerate([(dict(), torch.float64),
                                     (dict(label_smoothing=0.1, lse_square_scale=1e-3, reduction="sum"), torch.float32)]):
    h = torch.randn(29, 16, generator=gen(950 + k), dtype=torch.float64)
    W = torch.randn(300, 16, generator=gen(960 + k), dtype=torch.float64)
    t = torch.randint(0, 300, (29,), generator=gen(970 + k))
    t[::4] = -100
    zs = kwargs.pop("lse_square_scale", 0.0)

    def capped_reference(h, W, kwargs=kwargs, zs=zs, t=t):
        z = 2.5 * torch.tanh(h @ W.T / 2.5)
        loss = F.cross_entropy(z, t, **kwargs)
        counted = (t != -100).sum()
        lse = torch.logsumexp(z, 1)[t != -100]
        return loss + zs * (lse ** 2).sum() / (counted if kwargs.get("reduction", "mean") == "mean" else 1)
    run(f"linear_cross_entropy softcap {kwargs} z-loss {zs} {dtype}",
        lambda h, W, kwargs=kwargs, zs=zs, t=t: S.linear_cross_entropy(h, W, t, backend="triton", chunk_size=8,
                                                                      softcap=2.5, lse_square_scale=zs, **kwargs),
        capped_reference, [h, W], dtype)

print("GRID " + json.dumps(dict(ran=ran, failures=failures)))
sys.exit(0)
