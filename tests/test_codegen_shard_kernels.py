"""The generated per-shard kernels of vocab-parallel cross-entropy (``vocab_shard_forward``,
``vocab_shard_backward``): derived through the generator's path (catalogue sums, derivative, proved
rules, lowering), correct on every backend against torch, and used by ``symxent.distributed``."""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

torch = pytest.importorskip("torch")
F = torch.nn.functional

from symxent.codegen import SHARD_KERNELS, generate, load_kernel, write_all  # noqa: E402
from symxent.codegen.driver import lowered_functions, target_registry  # noqa: E402
from symxent.codegen.loss import Arg, Case, Loss  # noqa: E402
from symxent.definitions import class_sum, j, k, n, vector  # noqa: E402
from symxent.prove import vocab_parallel as vp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["numpy", "torch", "c"]
DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-10, np.float32: 3e-5}


def run(kernel, backend, *args):
    """Call ``kernel`` with NumPy arrays converted for ``backend``; outputs back as NumPy (None kept)."""
    if backend == "torch":
        args = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
    out = kernel(*args)
    convert = lambda o: None if o is None else (o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o))
    return tuple(convert(o) for o in out) if isinstance(out, tuple) else convert(out)


def shard_inputs(dtype, rows=6, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(rows, classes)) * 3).astype(dtype)
    row_max = (z.max(axis=1) + rng.uniform(0, 2, rows)).astype(dtype)  # a global max >= this shard's
    target = np.array([0, -1, classes - 1, 2, -1, 1])[:rows]
    weight = rng.uniform(0.5, 2, classes).astype(dtype)
    return z, row_max, target, weight


# --- the forward: one shard's class sums ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_partials_match_sums_written_out(backend, dtype):
    """sum exp(z - M), z_t - M (0 for t = -1), w_t (0 for t = -1), sum w (z - M): loops in the test."""
    z, row_max, target, weight = shard_inputs(dtype)
    got = run(load_kernel("vocab_shard_forward", backend), backend, z, row_max, target, weight, True)
    rows, classes = z.shape
    want = np.zeros((4, rows))
    for r in range(rows):
        for i in range(classes):
            shifted = float(z[r, i]) - float(row_max[r])
            want[0, r] += np.exp(shifted)
            want[3, r] += float(weight[i]) * shifted
            if i == target[r]:
                want[1, r], want[2, r] = shifted, float(weight[i])
    for output, expected in zip(got, want):
        assert output.dtype == dtype and output.shape == (rows,)
        np.testing.assert_allclose(output, expected, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_skips_the_smoothing_sum_unless_asked(backend):
    """want_smoothing=False returns None for the smoothing sum (and the same three other sums)."""
    z, row_max, target, weight = shard_inputs(np.float32)
    kernel = load_kernel("vocab_shard_forward", backend)
    with_smoothing = run(kernel, backend, z, row_max, target, weight, True)
    without = run(kernel, backend, z, row_max, target, weight, False)
    assert without[3] is None and with_smoothing[3] is not None
    for a, b in zip(with_smoothing[:3], without[:3]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_shard_owns_nothing_and_sums_nothing(backend):
    """A shard with 0 classes: every partial sum is 0 and the gradient is (R, 0)."""
    rows = 3
    z, weight = np.zeros((rows, 0)), np.zeros(0)
    target, vector_r = -np.ones(rows, dtype=np.int64), np.array([1.0, -2.0, 0.5])
    partials = run(load_kernel("vocab_shard_forward", backend), backend, z, vector_r, target, weight, True)
    for part in partials:
        np.testing.assert_array_equal(part, np.zeros(rows))
    for smoothing in (False, True):
        grad = run(load_kernel("vocab_shard_backward", backend), backend, z, vector_r, target, weight, vector_r,
                   vector_r, 4.0, smoothing)
        assert grad.shape == (rows, 0)


def test_c_kernel_checks_local_targets():
    """-1 is allowed for a local target, -2 and C are out of bounds (torch's message); the loss kernels
    still refuse -1."""
    z, row_max, target, weight = shard_inputs(np.float64)
    kernel = load_kernel("vocab_shard_forward", "c")
    for bad in (-2, z.shape[1]):
        with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
            kernel(z, row_max, np.where(target == 0, bad, target), weight, True)
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        load_kernel("cross_entropy", "c")(z, np.maximum(target, -1), weight, 0.0, 0.0, True)
    with pytest.raises(ValueError, match="one value per row"):
        kernel(z, row_max[:-1], target, weight, True)


# --- the backward: the gradient with the global logsumexp -----------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_matches_the_formula_written_out(backend, dtype):
    """(a + b W) exp(z - lse) - a onehot(t) - b w, onehot of t = -1 a row of zeros."""
    z, row_max, target, weight = shard_inputs(dtype, seed=1)
    rng = np.random.default_rng(2)
    lse = (row_max + rng.uniform(0, 1, z.shape[0])).astype(dtype)
    a, b = rng.normal(size=z.shape[0]).astype(dtype), rng.normal(size=z.shape[0]).astype(dtype)
    weight_sum = 9.25
    kernel = load_kernel("vocab_shard_backward", backend)
    got = run(kernel, backend, z, lse, target, weight, a, b, weight_sum, True)
    unread = np.full_like(b, np.nan)  # without smoothing b and the weight sum are not read
    got_plain = run(kernel, backend, z, lse, target, weight, a, unread, np.nan, False)
    want, want_plain = np.empty(z.shape), np.empty(z.shape)
    for r in range(z.shape[0]):
        for i in range(z.shape[1]):
            p = np.exp(float(z[r, i]) - float(lse[r]))
            onehot = 1.0 if i == target[r] else 0.0
            want[r, i] = (a[r] + b[r] * weight_sum) * p - a[r] * onehot - b[r] * weight[i]
            want_plain[r, i] = a[r] * (p - onehot)
    assert got.dtype == dtype and got_plain.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(got_plain, want_plain, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_shards_reassemble_torch_cross_entropy_and_its_gradient(backend, eps):
    """The verify check: shards (6, 0, 5) of logits up to 1e4, partials added, against F.cross_entropy and
    autograd (label smoothing or none, class weights, an ignored row)."""
    from symxent.codegen.conformance import check_vocab_shards
    ok, detail = check_vocab_shards(backend, seed=4, eps=eps)
    assert ok, detail


def test_the_shard_check_catches_a_wrong_kernel(monkeypatch):
    """A backward that forgets the one-hot term fails the check."""
    from symxent.codegen import conformance, driver
    original = driver.load_kernel
    right = original("vocab_shard_backward", "numpy")

    def loader(name, backend):
        if name == "vocab_shard_backward":
            return lambda z, lse, t, w, a, b, ws, s: right(z, lse, -np.ones_like(t), w, a, b, ws, s)
        return original(name, backend)
    monkeypatch.setattr(driver, "load_kernel", loader)
    ok, detail = conformance.check_vocab_shards("numpy")
    assert not ok and "grad" in detail


# --- through the generator's path ------------------------------------------------------------------

def test_backward_is_the_derived_gradient_of_the_proved_row_loss():
    """The backward's objective with a = (1-eps) W_c, b = eps/n is the right side of the proved identity
    vocab_parallel_row_loss (at M = 0); its derived gradient is the hand derivation
    (a + b W) exp(z_k - lse) - a delta(k, t) - b w_k, global logsumexp and weight sum supplied."""
    loss = SHARD_KERNELS["vocab_shard_backward"]
    symbols = {arg.name: arg.symbol for arg in loss.args}
    t, a, b = symbols["target"], symbols["onehot_scale"], symbols["smoothing_scale"]
    eps = vp.eps
    objective = loss.cases[-1].expr.xreplace({t: vp.c})  # the case with label smoothing
    proved_rhs = vp.distributed_row_loss().xreplace({vp.M: 0})
    coefficients = {a: (1 - eps) * vp.target_weight().xreplace({vp.M: 0}), b: eps / n}
    assert sp.expand(objective.xreplace(coefficients) - proved_rhs) == 0
    plain, smoothed = loss.functions()
    assert plain.when == (("smoothing", False),) and smoothed.when == ()
    z, w = vp.z, vp.w
    lse, weight_sum = symbols["lse"], symbols["weight_sum"]
    by_hand = (a + b * weight_sum) * sp.exp(z[k] - lse) - a * sp.KroneckerDelta(k, t) - b * w[k]
    for function, expected in ((smoothed, by_hand), (plain, by_hand.xreplace({b: 0}))):
        (name, grad), = function.outputs
        assert name == "grad" and sp.simplify(grad - expected) == 0
        assert not grad.has(sp.Sum)


@pytest.mark.parametrize("target_name", ["numpy", "torch", "c"])
def test_shard_kernels_compute_no_reduction_the_caller_supplies(target_name):
    """The forward computes its sums but no row max (M is given); the backward no reduction at all (the
    global logsumexp and weight sum are given)."""
    target = target_registry()[target_name]
    (forward,) = lowered_functions(SHARD_KERNELS["vocab_shard_forward"], target)
    assert [s.op for s in forward.statements].count("sum") == 2
    assert all(s.op != "max" for s in forward.statements)
    for backward in lowered_functions(SHARD_KERNELS["vocab_shard_backward"], target):
        assert all(s.op not in ("sum", "max") for s in backward.statements)
        assert backward.outputs[0].scatter is not None and backward.in_row is not None


def test_generated_files_are_checked_in_and_quote_their_source():
    """codegen/{numpy,torch,c}/ hold both kernels as the generator writes them, headed by the class sums."""
    names = sorted(SHARD_KERNELS)
    assert write_all(ROOT / "codegen", check=True, names=names) == []
    for name in names:
        for path in (f"numpy/{name}.py", f"torch/{name}.py", f"c/{name}.c", f"c/{name}.py"):
            assert (ROOT / "codegen" / path).is_file(), path
    head = generate("vocab_shard_forward", "torch")[:1500]
    assert "Sum(exp(-M + z[j]), (j, 0, n - 1))" in head and "KroneckerDelta(j, t)" in head
    assert "argument lse supplies log(Sum(exp(z[j]), (j, 0, n - 1)))" in generate("vocab_shard_backward", "c")[:2000]


def test_a_supplied_sum_is_matched_whatever_its_index_is_called():
    """Loss.supply replaces Sum(w[i]) by the argument that supplies Sum(w[j]) (same sum, other bound index)."""
    z, w = vector("z"), vector("w")
    total = sp.Symbol("total", real=True)
    i = sp.Symbol("i", integer=True, nonnegative=True)
    weight_sum = class_sum(lambda q: w[q], w, index=j)
    args = (Arg("z", "rows", z.base), Arg("weight", "classes", w.base), Arg("total", "scalar", total, supplies=weight_sum))
    loss = Loss("scaled", "row_gradient", args, (Case((), z[0]),), z.base)
    expr = sp.Sum(w[i], (i, 0, n - 1)) * z[k] + sp.Sum(w[i] * z[i], (i, 0, n - 1))
    assert loss.supply(expr) == total * z[k] + sp.Sum(w[i] * z[i], (i, 0, n - 1))


def test_new_roles_are_checked():
    """Only row/scalar arguments supply values; a C reserved name is refused with a clear message."""
    with pytest.raises(ValueError, match="only a 'row' or 'scalar' argument supplies"):
        Arg("z", "rows", vector("z").base, supplies=sp.Symbol("s"))
    z = vector("z")
    r = sp.Symbol("r", real=True)
    loss = Loss("clash", "row_gradient", (Arg("z", "rows", z.base), Arg("a", "row", r)),
                (Case((), r * z[0]),), z.base)
    with pytest.raises(ValueError, match="'a' is used by the generated C code"):
        generate(loss, "c")


# --- symxent.distributed uses them -----------------------------------------------------------------

def test_distributed_shard_functions_run_the_generated_torch_kernels(monkeypatch):
    """shard_partials / shard_gradient call load_kernel(..., "torch") and agree with torch ops written here."""
    from symxent.distributed import shard_kernels
    calls = []
    real = shard_kernels.load_kernel
    monkeypatch.setattr(shard_kernels, "load_kernel", lambda name, backend: calls.append((name, backend))
                        or real(name, backend))
    z64, row_max, target, weight = shard_inputs(np.float32, seed=5)
    z, m, t, w = (torch.from_numpy(v) for v in (z64, row_max, target, weight))
    owned = t >= 0
    index = t.clamp(min=0)
    shifted = z - m[:, None]
    parts = shard_kernels.shard_partials(z, m, t, None, smoothing=True)
    torch.testing.assert_close(parts.sum_exp, shifted.exp().sum(1))
    torch.testing.assert_close(parts.target_logit, torch.where(owned, shifted.gather(1, index[:, None])[:, 0], 0.0))
    torch.testing.assert_close(parts.smoothing, shifted.sum(1))
    assert parts.target_weight is None
    weighted = shard_kernels.shard_partials(z, m, t, w, smoothing=False)
    torch.testing.assert_close(weighted.target_weight, torch.where(owned, w[index], 0.0))
    assert weighted.smoothing is None and weighted.sum_exp.dtype == torch.float32
    lse, a, b = m + 0.5, torch.linspace(-1, 1, z.shape[0]), torch.linspace(0.2, 0.4, z.shape[0])
    onehot = torch.zeros_like(z)
    onehot[owned.nonzero()[:, 0], t[owned]] = 1.0
    want = (a + b * 7.0)[:, None] * torch.exp(z - lse[:, None]) - a[:, None] * onehot - b[:, None] * w
    torch.testing.assert_close(shard_kernels.shard_gradient(z, lse, t, w, a, b, torch.tensor(7.0)), want)
    no_smoothing = a[:, None] * torch.exp(z - lse[:, None]) - a[:, None] * onehot
    torch.testing.assert_close(shard_kernels.shard_gradient(z, lse, t, None, a, None, 5), no_smoothing)
    assert set(calls) == {("vocab_shard_forward", "torch"), ("vocab_shard_backward", "torch")}
