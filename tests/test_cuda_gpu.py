"""The generated CUDA kernels on a GPU: conformance with PyTorch, gradients, numerics, limits.

Marked ``gpu`` and skipped without a usable CUDA GPU (Hopper or newer, PyTorch with CUDA, nvcc,
ninja): the reason is in the skip message. The references are PyTorch in float64 computed from the
same (possibly bf16 / fp16) logits, so the only differences allowed are the kernel's fp32
arithmetic and the one rounding of each output to its dtype. ``slow``: the N*V > 2^31 test.

Run on a GPU machine:  python -m pytest tests/test_cuda_gpu.py -m gpu -q
"""
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf
from symxent.runtime.cuda import unavailable_reason

REASON = unavailable_reason()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(REASON is not None, reason=f"needs a CUDA GPU for the generated kernels: {REASON}")]

if REASON is None:  # import what needs torch with CUDA only where it can run
    from symxent.codegen.cuda import user_loss_examples, user_row_loss
    from symxent.runtime import cuda_autograd as cx

DEVICE = "cuda"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DTYPE_IDS = ["fp32", "fp16", "bf16"]
REDUCTIONS = ["none", "mean", "sum"]
#: one rounding of the output: 2 ulp relative, plus an absolute floor relative to the largest value
RTOL = {torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 1.6e-2}
ATOL_FRACTION = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def assert_close(actual, expected, dtype, rtol=None):
    """``actual`` (dtype) against a float64 reference, allowing one rounding to ``dtype``."""
    expected = expected.detach().to(torch.float64)
    atol = ATOL_FRACTION[dtype] * max(float(expected.abs().max()), 1e-30) if expected.numel() else 0.0
    torch.testing.assert_close(actual.detach().to(torch.float64), expected, rtol=rtol or RTOL[dtype], atol=atol)


def logits(rows, cols, dtype, seed=0, scale=4.0):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return (torch.randn(rows, cols, generator=g, device=DEVICE) * scale).to(dtype)


def targets(rows, cols, seed=1, ignore_every=0, ignore_index=-100):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    t = torch.randint(0, cols, (rows,), generator=g, device=DEVICE)
    if ignore_every:
        t[::ignore_every] = ignore_index
    return t


def class_weights(cols, dtype, seed=2):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return (torch.rand(cols, generator=g, device=DEVICE) + 0.5).to(dtype)


def reference_cross_entropy(z, t, weight, ignore_index, reduction, eps, zs):
    """PyTorch's cross_entropy in float64 plus the z-loss zs * lse^2 per counted row, as Liger-Kernel defines
    it (mean: the cross-entropy / W, the z-loss / the number of counted rows)."""
    z64 = z.detach().to(torch.float64).requires_grad_()
    w64 = None if weight is None else weight.to(torch.float64)
    probability = t.is_floating_point()
    t_ref = t.to(torch.float64) if probability else t
    ce = F.cross_entropy(z64, t_ref, weight=w64, ignore_index=ignore_index, reduction="none", label_smoothing=eps)
    lse = torch.logsumexp(z64, 1)
    counted = torch.ones_like(lse) if probability else (t != ignore_index).to(torch.float64)
    rows = ce + zs * lse ** 2 * counted
    if reduction == "none":
        loss = rows
    elif reduction == "sum":
        loss = rows.sum()
    elif probability:
        loss = rows.sum() / z.shape[0]
    else:
        total = (w64[t.clamp(min=0)] if w64 is not None else torch.ones_like(lse)) * counted
        loss = ce.sum() / total.sum() + zs * (lse ** 2 * counted).sum() / counted.sum()
    return loss, z64


def run_both(z, t, weight=None, *, ignore_index=-100, reduction="mean", eps=0.0, zs=0.0, go=None,
             inplace=False):
    """(symxent loss, symxent grad, reference loss, reference grad) with the same upstream gradient."""
    x = z.detach().clone().requires_grad_()
    loss = cx.cross_entropy(x, t, weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps,
                            lse_square_scale=zs, inplace_backward=inplace)
    ref, z64 = reference_cross_entropy(z, t, weight, ignore_index, reduction, eps, zs)
    go = (torch.ones_like(ref) if go is None else go).to(loss.dtype)  # the same (rounded) values both sides
    loss.backward(go)
    ref.backward(go.to(torch.float64))
    return loss, x.grad, ref, z64.grad


# --- cross-entropy: every option, dtype and reduction ------------------------------------------------

OPTIONS = {
    "plain": dict(),
    "weight": dict(weighted=True),
    "smoothing": dict(eps=0.1),
    "weight_smoothing_ignore": dict(weighted=True, eps=0.2, ignore_every=5),
    "all_with_z_loss": dict(weighted=True, eps=0.1, ignore_every=7, zs=1e-3),
    "ignore_index_in_range": dict(ignore_every=3, ignore_index=0),
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_cross_entropy_matches_torch(dtype, reduction, option):
    """Loss and gradient of (37, 1003) logits (rows start off 16-byte boundaries) for every option."""
    o = OPTIONS[option]
    rows, cols = 37, 1003
    ignore_index = o.get("ignore_index", -100)
    z = logits(rows, cols, dtype)
    t = targets(rows, cols, ignore_every=o.get("ignore_every", 0), ignore_index=ignore_index)
    w = class_weights(cols, dtype) if o.get("weighted") else None
    go = None
    if reduction == "none":
        go = torch.linspace(-2, 3, rows, device=DEVICE)  # each row its own upstream gradient
    loss, grad, ref, ref_grad = run_both(z, t, w, ignore_index=ignore_index, reduction=reduction,
                                         eps=o.get("eps", 0.0), zs=o.get("zs", 0.0), go=go)
    assert loss.dtype == dtype and grad.dtype == dtype
    assert_close(loss, ref, dtype)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("eps,zs", [(0.0, 0.0), (0.1, 0.0), (0.1, 1e-3)], ids=["plain", "smoothing", "z_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_cross_entropy_with_probability_targets_matches_torch(dtype, reduction, eps, zs):
    rows, cols = 19, 517
    z = logits(rows, cols, dtype)
    y = torch.softmax(logits(rows, cols, torch.float32, seed=5), 1).to(dtype)
    w = class_weights(cols, dtype)
    go = torch.linspace(-1, 2, rows, device=DEVICE) if reduction == "none" else None
    loss, grad, ref, ref_grad = run_both(z, y, w, reduction=reduction, eps=eps, zs=zs, go=go)
    assert_close(loss, ref, dtype)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("cols", [1, 3, 7, 8, 9, 1001, 32000, 32003, 128256, 300000, 600000],
                         ids=lambda c: f"C{c}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_row_lengths_not_multiple_of_the_vector_width_and_every_cluster_size(dtype, cols):
    """Odd lengths (scalar head and tail), one CTA per row, clusters of 2..16 CTAs with the row in
    shared memory, and rows too long for that (600000 fp32: streamed)."""
    rows = 3 if cols > 100000 else 5
    z = logits(rows, cols, dtype, seed=cols)
    t = targets(rows, cols, seed=cols + 1)
    w = class_weights(cols, dtype)
    loss, grad, ref, ref_grad = run_both(z, t, w, eps=0.05, reduction="sum")
    # fp32 sums over 10^5 classes: allow 5x the default relative error there
    rtol = RTOL[dtype] * (5 if dtype == torch.float32 and cols > 100000 else 1)
    assert_close(loss, ref, dtype, rtol)
    assert_close(grad, ref_grad, dtype, rtol)


def test_per_row_logsumexp_is_returned_for_every_row():
    z = logits(9, 2001, torch.float32)
    t = targets(9, 2001, ignore_every=2)
    loss, lse = cx.cross_entropy(z, t, reduction="none", return_lse=True)
    assert lse.dtype == torch.float32 and not lse.requires_grad
    torch.testing.assert_close(lse.double(), torch.logsumexp(z.double(), 1), rtol=1e-6, atol=1e-6)
    assert (loss[::2] == 0).all()


def test_upstream_gradient_scales_the_stored_gradient():
    """mean with grad_output 2.5: the backward multiplies every row (not only when it is 1)."""
    z = logits(8, 777, torch.float32)
    t = targets(8, 777)
    loss, grad, ref, ref_grad = run_both(z, t, reduction="mean", go=torch.tensor(2.5, device=DEVICE))
    assert_close(grad, ref_grad, torch.float32)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient():
    """As torch: the mean over no counted row is NaN; the gradient is exactly zero."""
    z = logits(4, 300, torch.bfloat16).requires_grad_()
    t = torch.full((4,), -100, device=DEVICE)
    loss = cx.cross_entropy(z, t)
    assert torch.isnan(loss)
    loss.backward()
    assert (z.grad == 0).all()


# --- memory and in-place gradient ----------------------------------------------------------------------

def test_default_keeps_the_logits_intact():
    z = logits(16, 4099, torch.bfloat16).requires_grad_()
    before = z.detach().clone()
    cx.cross_entropy(z, targets(16, 4099)).backward()
    assert torch.equal(z.detach(), before)


def test_inplace_backward_writes_the_gradient_into_the_logits_without_extra_memory():
    """The gradient lands in the logits' buffer during the forward pass; z.grad shares that buffer
    and nothing of size N*V is allocated (the anchor: Liger-Kernel's 0 bytes)."""
    rows, cols = 512, 32000
    z0 = logits(rows, cols, torch.bfloat16)
    t = targets(rows, cols, ignore_every=17)
    expected_loss, expected_grad, _, _ = run_both(z0, t)
    z = z0.clone().requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    loss = cx.cross_entropy(z, t, inplace_backward=True)
    loss.backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 1 << 20, f"{extra} bytes allocated beyond the inputs"
    assert z.grad.data_ptr() == z.data_ptr()
    assert torch.equal(loss, expected_loss)
    assert torch.equal(z.grad, expected_grad)


def test_backward_runs_once():
    z = logits(4, 100, torch.float32).requires_grad_()
    loss = cx.cross_entropy(z, targets(4, 100))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="can run once"):
        loss.backward()


# --- numerics ----------------------------------------------------------------------------------------

def test_bf16_true_class_gradient_is_formed_in_fp32_and_rounded_once():
    """256 x 32000 bf16 logits, the true logit raised until p_true ~ 0.98: the median relative error
    of d loss / d z_true (p - 1 ~ -0.02) against float64 from the same bf16 logits is within one
    bf16 rounding, and no worse than torch's own bf16 path (anchor: torch 0.17%, Liger 0.14%)."""
    rows, cols = 256, 32000
    z = logits(rows, cols, torch.float32, scale=1.0)
    t = targets(rows, cols)
    rest = torch.logsumexp(z.scatter(1, t[:, None], -float("inf")), 1)
    z[torch.arange(rows), t] = rest + torch.log(torch.tensor(0.98 / 0.02))  # p_true = 0.98
    z = z.to(torch.bfloat16)
    x = z.clone().requires_grad_()
    cx.cross_entropy(x, t, reduction="sum").backward()
    z64 = z.double().requires_grad_()
    F.cross_entropy(z64, t, reduction="sum").backward()
    zt = z.clone().requires_grad_()
    F.cross_entropy(zt, t, reduction="sum").backward()
    rows_idx = torch.arange(rows)
    exact = z64.grad[rows_idx, t]
    assert float(exact.mean()) == pytest.approx(-0.02, rel=0.2)
    ours = ((x.grad[rows_idx, t].double() - exact) / exact).abs().median()
    theirs = ((zt.grad[rows_idx, t].double() - exact) / exact).abs().median()
    assert ours <= 2.0 ** -9, f"median relative error {float(ours):.2e}"
    assert ours <= theirs * 1.05 + 1e-12, f"symxent {float(ours):.2e} vs torch {float(theirs):.2e}"


@pytest.mark.slow
def test_offsets_beyond_two_to_the_31():
    """N*V > 2^31 elements (a 4.3 GB bf16 logits tensor, gradient in place): the last rows, whose
    offsets exceed 2^31, have the right loss and gradient."""
    rows, cols = 16385, 131072  # row 16384 starts exactly at element 2^31
    assert rows * cols > 2 ** 31
    z = torch.randn(rows, cols, device=DEVICE, dtype=torch.bfloat16)
    t = targets(rows, cols)
    check = [0, 16383, 16384]
    z_rows = z[check].clone()
    x = z.requires_grad_()
    loss = cx.cross_entropy(x, t, reduction="none", inplace_backward=True)
    loss.backward(torch.ones_like(loss))
    z64 = z_rows.double().requires_grad_()
    ref = F.cross_entropy(z64, t[check], reduction="none")
    ref.sum().backward()
    assert_close(loss[check], ref, torch.bfloat16)
    assert_close(x.grad[check], z64.grad, torch.bfloat16)


# --- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [1003, -5], ids=["too_large", "negative"])
def test_out_of_range_target_raises_before_touching_the_logits(bad):
    z = logits(6, 1003, torch.bfloat16).requires_grad_()
    before = z.detach().clone()
    t = targets(6, 1003)
    t[4] = bad
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds."):
        cx.cross_entropy(z, t, inplace_backward=True)
    torch.cuda.synchronize()
    assert torch.equal(z.detach(), before)


def test_double_precision_is_refused_clearly():
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        cx.cross_entropy(logits(2, 5, torch.float64), targets(2, 5))


def test_non_contiguous_logits_are_accepted():
    z = logits(300, 40, torch.float32).t()  # (40, 300) view, not contiguous
    t = targets(40, 300)
    loss, grad, ref, ref_grad = run_both(z, t)
    assert_close(loss, ref, torch.float32)
    assert_close(grad, ref_grad, torch.float32)


# --- the other kernels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_and_log_softmax_forward_and_backward_match_torch(dtype, name):
    z = logits(13, 4101, dtype)
    ours_fn, ref_fn = (cx.softmax, torch.softmax) if name == "softmax" else (cx.log_softmax, torch.log_softmax)
    x = z.clone().requires_grad_()
    out = ours_fn(x)
    z64 = z.double().requires_grad_()
    ref = ref_fn(z64, 1)
    go = logits(13, 4101, torch.float32, seed=9, scale=1.0)
    out.backward(go.to(dtype))
    ref.backward(go.to(dtype).double())
    assert_close(out, ref, dtype)
    assert_close(x.grad, z64.grad, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nll_loss_matches_torch(dtype, reduction):
    logp = torch.log_softmax(logits(21, 333, torch.float32), 1).to(dtype)
    t = targets(21, 333, ignore_every=4)
    w = class_weights(333, dtype)
    x = logp.clone().requires_grad_()
    loss = cx.nll_loss(x, t, w, reduction=reduction)
    l64 = logp.double().requires_grad_()
    ref = F.nll_loss(l64, t, w.double(), reduction=reduction)
    go = torch.linspace(-1, 1, 21, device=DEVICE) if reduction == "none" else torch.tensor(1.0, device=DEVICE)
    go = go.to(dtype)
    loss.backward(go)
    ref.backward(go.double())
    assert_close(loss, ref, dtype)
    assert_close(x.grad, l64.grad, dtype)


@pytest.mark.parametrize("weights", ["none", "per_class", "full"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_bce_with_logits_matches_torch(dtype, reduction, weights):
    x0 = logits(17, 61, dtype, scale=6.0)
    t = torch.rand(17, 61, device=DEVICE).to(dtype)
    pw = (torch.rand(61, device=DEVICE) * 3).to(dtype) if weights != "none" else None
    w = {"none": None, "per_class": torch.rand(61, device=DEVICE).to(dtype),
         "full": torch.rand(17, 61, device=DEVICE).to(dtype)}[weights]
    x = x0.clone().requires_grad_()
    loss = cx.binary_cross_entropy_with_logits(x, t, w, pw, reduction=reduction)
    x64 = x0.double().requires_grad_()
    ref = F.binary_cross_entropy_with_logits(x64, t.double(), None if w is None else w.double(),
                                             pos_weight=None if pw is None else pw.double(), reduction=reduction)
    go = (torch.ones_like(ref) if reduction != "none" else torch.rand_like(ref)).to(dtype)
    loss.backward(go)
    ref.backward(go.double())
    assert_close(loss, ref, dtype)
    assert_close(x.grad, x64.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_bce_and_kl_div_match_torch(dtype):
    p = torch.rand(9, 33, device=DEVICE).clamp(0.01, 0.99).to(dtype)
    t = torch.rand(9, 33, device=DEVICE).to(dtype)
    x = p.clone().requires_grad_()
    loss = cx.binary_cross_entropy(x, t, reduction="mean")
    p64 = p.double().requires_grad_()
    ref = F.binary_cross_entropy(p64, t.double(), reduction="mean")
    loss.backward()
    ref.backward()
    assert_close(loss, ref, dtype)
    assert_close(x.grad, p64.grad, dtype)
    logq = torch.log_softmax(logits(9, 33, torch.float32), 1).to(dtype)
    target = torch.softmax(logits(9, 33, torch.float32, seed=3), 1).to(dtype)
    q = logq.clone().requires_grad_()
    kl = cx.kl_div(q, target, reduction="batchmean")
    q64 = logq.double().requires_grad_()
    kl_ref = F.kl_div(q64, target.double(), reduction="batchmean")
    kl.backward()
    kl_ref.backward()
    assert_close(kl, kl_ref, dtype)
    assert_close(q.grad, q64.grad, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_user_losses_go_through_the_row_template(dtype):
    """Focal loss and soft-capped cross-entropy (code generation I) against their definitions."""
    examples = user_loss_examples()
    z = logits(24, 2050, dtype, scale=8.0)
    t = targets(24, 2050, ignore_every=6)
    counted = t != -100
    z64 = z.double().requires_grad_()
    logp = torch.log_softmax(z64, 1)[torch.arange(24), t.clamp(min=0)]
    focal_ref = (-(1 - logp.exp()) ** 2.0 * logp * counted).sum() / counted.sum()
    capped = 30.0 * torch.tanh(z64 / 30.0)
    capped_ref = F.cross_entropy(capped, t, reduction="mean")
    for name, params, ref in [("focal", {"gamma": 2.0}, focal_ref),
                              ("softcap", {"cap": 30.0}, capped_ref)]:
        x = z.clone().requires_grad_()
        loss = user_row_loss(examples[name], x, t, params)
        loss.backward()
        z64.grad = None
        ref.backward(retain_graph=True)
        assert_close(loss, ref, dtype)
        assert_close(x.grad, z64.grad, dtype)


# --- the risks of the row skeleton (issue 15's list): every cluster size x option x dtype x in-place -------------

#: row lengths (classes) that give clusters of 1, 2, 4, 8 and 16 CTAs (rows.cuh: a CTA's shared memory <= 64 KiB,
#: the row's share plus its fp32 exponentials: 8 bytes an element in fp32, 6 in bf16 / fp16, the class vector's
#: share on top with weights or smoothing, which then takes the next size), per element size
CLUSTER_COLS = {4: {1: 3000, 2: 12000, 4: 24000, 8: 48000, 16: 100000},
                2: {1: 6000, 2: 15000, 4: 30000, 8: 60000, 16: 128000}}


@pytest.mark.parametrize("inplace", [False, True], ids=["copy", "inplace"])
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("cluster", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_every_cluster_size_option_dtype_and_inplace(dtype, cluster, option, inplace):
    cols = CLUSTER_COLS[torch.tensor([], dtype=dtype).element_size()][cluster]
    spec = dict(OPTIONS[option])
    ignore_index = spec.pop("ignore_index", -100)
    z = logits(4, cols, dtype, seed=cluster)
    t = targets(4, cols, seed=cluster + 1, ignore_every=spec.pop("ignore_every", 0), ignore_index=ignore_index)
    w = class_weights(cols, dtype) if spec.pop("weighted", False) else None
    loss, grad, ref, ref_grad = run_both(z, t, w, ignore_index=ignore_index, reduction="sum", inplace=inplace, **spec)
    rtol = RTOL[dtype] * (5 if dtype == torch.float32 and cols > 100000 else 1)
    assert_close(loss, ref, dtype, rtol)
    assert_close(grad, ref_grad, dtype, rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_no_rows(dtype):
    z = logits(0, 50, dtype)
    loss, grad, ref, ref_grad = run_both(z, targets(0, 50), reduction="sum")
    assert loss.item() == 0 and grad.shape == (0, 50)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rows_of_minus_infinity_but_the_target(dtype):
    z = torch.full((3, 1000), float("-inf"), device=DEVICE, dtype=dtype)
    t = torch.tensor([5, 500, 999], device=DEVICE)
    z[torch.arange(3, device=DEVICE), t] = torch.tensor([0.0, 3.0, -2.0], device=DEVICE, dtype=dtype)
    loss, grad, ref, ref_grad = run_both(z, t, reduction="none", go=torch.ones(3, device=DEVICE))
    assert_close(loss, ref, dtype)
    assert torch.equal(grad.isnan(), ref_grad.isnan()) and torch.nan_to_num(grad).abs().max() == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_a_misaligned_input_slice(dtype):
    """Logits starting one element after a 16-byte boundary (a slice of a larger buffer): the scalar head."""
    base = logits(5 * 1001 + 1, 1, dtype).reshape(-1)
    z = base[1:].reshape(5, 1001)
    assert z.data_ptr() % 16 != 0
    loss, grad, ref, ref_grad = run_both(z, targets(5, 1001), class_weights(1001, dtype), eps=0.1, reduction="sum")
    assert_close(loss, ref, dtype)
    assert_close(grad, ref_grad, dtype)


def test_weights_of_another_dtype_raise_as_torch():
    z, t = logits(4, 10, torch.float32), targets(4, 10)
    with pytest.raises(RuntimeError) as theirs:
        F.cross_entropy(z, t, weight=class_weights(10, torch.float64))
    with pytest.raises(RuntimeError) as ours:
        sxf.cross_entropy(z, t, weight=class_weights(10, torch.float64), backend="cuda")
    assert "scalar type" in str(theirs.value) and "scalar type" in str(ours.value), (ours.value, theirs.value)


def test_many_rows():
    z = logits(200_000, 64, torch.bfloat16)
    t = targets(200_000, 64, ignore_every=13)
    loss, grad, ref, ref_grad = run_both(z, t, reduction="mean")
    assert_close(loss, ref, torch.bfloat16)
    assert_close(grad, ref_grad, torch.bfloat16)


@pytest.mark.parametrize("cols", [1000, 240000], ids=["one_cta", "cluster"])
def test_the_same_bits_twice(cols):
    z, t = logits(8, cols, torch.bfloat16), targets(8, cols)
    runs = [run_both(z, t, class_weights(cols, torch.bfloat16), eps=0.1, reduction="sum")[:2] for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


# --- fused linear + cross-entropy with the CUDA row kernel (issue 13) -----------------------------------------------

@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "lse_square_scale": 1e-3, "softcap": 15.0}],
                         ids=["plain", "smoothing_zloss_softcap"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_linear_cross_entropy_cuda_chunks_match_the_unfused_reference(dtype, options):
    """Chunks through the generated CUDA kernel (the gradient into each chunk's logits; the soft-capping inside
    ``cross_entropy_softcap``) against torch's unfused float64 reference on the same (rounded) inputs."""
    g = torch.Generator(device="cpu").manual_seed(7)
    h = (torch.randn(300, 64, generator=g, dtype=torch.float64)).to(DEVICE, dtype).requires_grad_()
    W = (torch.randn(5000, 64, generator=g, dtype=torch.float64) * 0.3).to(DEVICE, dtype).requires_grad_()
    t = torch.randint(0, 5000, (300,), generator=g).to(DEVICE)
    t[::7] = -100
    loss = sxf.linear_cross_entropy(h, W, t, backend="cuda", chunk_size=64, **options)
    loss.backward()
    h64, W64 = (x.detach().double().requires_grad_() for x in (h, W))
    z = h64 @ W64.T
    cap = options.get("softcap")
    if cap:
        z = cap * torch.tanh(z / cap)
    want = F.cross_entropy(z, t, label_smoothing=options.get("label_smoothing", 0.0))
    zs = options.get("lse_square_scale", 0.0)
    if zs:
        kept = t != -100
        want = want + zs * (torch.logsumexp(z, 1)[kept] ** 2).sum() / kept.sum()
    want.backward()
    rtol = 2e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(loss.double(), want.detach(), rtol=rtol, atol=rtol)
    for ours, theirs in ((h.grad, h64.grad), (W.grad, W64.grad)):
        torch.testing.assert_close(ours.double(), theirs, rtol=rtol * 5, atol=rtol * float(theirs.abs().max()))
