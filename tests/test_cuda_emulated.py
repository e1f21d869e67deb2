"""The CUDA row kernels run as they are on host threads (``symxent/cuda/emulate.h``): whole batches through
``rows_kernel`` (rows.cuh), against PyTorch's float64 autograd.

What this covers that tests/test_cuda_codegen.py (one row each) does not: bf16 loads and stores, rows that do not
start or end on 16 bytes (a scalar head and tail per row), clusters of 1 to 16 CTAs (the row maximum and the sums
merged through the other CTAs' shared memory, split cluster barriers), the row's share in shared memory or
streamed from global memory, the gradient written in place over the logits, ignored targets (with and without
their logsumexp), an out-of-range target (reported, its row zero), ``mean``'s 1/W and the call's factor, a
forward-only call, probability targets, a row map. The GPU's timing and memory model are not emulated: those
need tests/test_cuda_gpu.py on a GPU.
"""
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "symxent" / "runtime" / "include"
MODULES = ("cross_entropy", "cross_entropy_prob", "softmax")

PROGRAM = r"""
#include "symxent/cuda/emulate.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
${includes}

// a 16-byte aligned buffer of n values of T (as the runtime hands the kernels: contiguous, aligned starts)
template <typename T> T* buffer(size_t n) {
  return static_cast<T*>(std::aligned_alloc(16, ((n * sizeof(T) + 15) / 16) * 16 + 16));
}
template <typename T> T* read_values(size_t n) {
  T* out = buffer<T>(n);
  for (size_t i = 0; i < n; ++i) {
    float v;
    if (std::scanf("%f", &v) != 1) std::exit(2);
    out[i] = symxent_cuda::from_float<T>(v);
  }
  return out;
}

struct Spec {
  long long rows, cols, ignore_index;
  int cluster, cached, inplace, lse_of_ignored, want_out;
  float factor, denom;
};

template <typename M, typename T, typename Case> int run(const Spec& s, const typename M::Params& prm) {
  const size_t n = (size_t)(s.rows * s.cols);
  int flag;
  T* w = nullptr;
  T* y = nullptr;
  int64_t* t = nullptr;
  if (std::scanf("%d", &flag) != 1) return 2;
  if (flag) w = read_values<T>((size_t)s.cols);
  if (std::scanf("%d", &flag) != 1) return 2;
  if (flag) y = read_values<T>(n);
  if (std::scanf("%d", &flag) != 1) return 2;
  if (flag) {
    t = buffer<int64_t>((size_t)s.rows);
    for (long long r = 0; r < s.rows; ++r) if (std::scanf("%lld", (long long*)&t[r]) != 1) return 2;
  }
  T* x = read_values<T>(n);
  T* out = !s.want_out ? nullptr : s.inplace ? x : buffer<T>(n);
  if (out != nullptr && out != x) for (size_t i = 0; i < n; ++i) out[i] = symxent_cuda::from_float<T>(NAN);
  std::vector<float> loss(s.rows, NAN), lse(s.rows, NAN);
  unsigned long long status = ~0ull;
  const float denom = s.denom;
  symxent_cuda::emulate_rows<M, T, Case>(x, y, w, t, out, loss.data(), lse.data(), s.denom >= 0 ? &denom : nullptr,
                                         s.factor, &status, s.rows, s.cols, s.ignore_index, s.lse_of_ignored != 0,
                                         prm, s.cluster, s.cached != 0);
  std::printf("%lld\n", status == ~0ull ? -1LL : (long long)status);
  for (long long r = 0; r < s.rows; ++r) std::printf("%.9g %.9g\n", loss[r], lse[r]);
  if (out != nullptr) for (size_t i = 0; i < n; ++i) std::printf("%.9g\n", symxent_cuda::to_float<T>(out[i]));
  return 0;
}

int main() {
  char name[64];
  int which, dtype, nparams;
  Spec s;
  if (std::scanf("%63s %d %d %lld %lld %d %d %d %d %d %lld %f %f %d", name, &which, &dtype, &s.rows, &s.cols,
                 &s.cluster, &s.cached, &s.inplace, &s.lse_of_ignored, &s.want_out, &s.ignore_index, &s.factor,
                 &s.denom, &nparams) != 14) return 2;
  std::vector<double> params(nparams);
  for (auto& p : params) if (std::scanf("%lf", &p) != 1) return 2;
${dispatch}
  return 3;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no host C++ compiler")
    folder = tmp_path_factory.mktemp("emulated")
    includes = "\n".join(f'#include "{ROOT / "codegen" / "cuda" / f"{m}.cu"}"' for m in MODULES)
    dispatch = []
    for module, cases in (("cross_entropy", 2), ("cross_entropy_prob", 2), ("softmax", 2)):
        for case in range(cases):
            for dtype, ctype in ((0, "float"), (2, "__nv_bfloat16")):
                m = f"sx_{module}::Module"
                dispatch.append(f'  if (!std::strcmp(name, "{module}") && which == {case} && dtype == {dtype}) {{\n'
                                f"    if (nparams != {m}::kParams) return 4;\n"
                                f"    return run<{m}, {ctype}, sx_{module}::Case{case}>(s, {m}::params(params.data()));"
                                f"\n  }}")
    source = PROGRAM.replace("${includes}", includes).replace("${dispatch}", "\n".join(dispatch))
    (folder / "emulated.cpp").write_text(source)
    done = subprocess.run([compiler, "-std=c++20", "-O2", "-pthread", f"-I{INCLUDE}", str(folder / "emulated.cpp"),
                           "-o", str(folder / "emulated")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-6000:]
    return folder / "emulated"


def run(program, module, case, x, *, dtype=torch.float32, target=None, y=None, weight=None, params=(),
        cluster=1, cached=True, inplace=False, lse_of_ignored=False, want_out=True, ignore_index=-100,
        factor=1.0, denom=None):
    """(status, loss per row, lse per row, output or None) of the emulated kernel on the rows of ``x``."""
    rows, cols = x.shape
    code = {torch.float32: 0, torch.bfloat16: 2}[dtype]
    head = (f"{module} {case} {code} {rows} {cols} {cluster} {int(cached)} {int(inplace)} {int(lse_of_ignored)} "
            f"{int(want_out)} {ignore_index} {factor!r} {-1.0 if denom is None else denom!r} {len(params)}")
    lines = [head, " ".join(repr(float(p)) for p in params)]
    for values in (weight, y):
        lines.append("0" if values is None else "1 " + " ".join(repr(float(v)) for v in values.flatten().tolist()))
    lines.append("0" if target is None else "1 " + " ".join(str(int(t)) for t in target.tolist()))
    lines.append(" ".join(repr(float(v)) for v in x.flatten().tolist()))
    done = subprocess.run([str(program)], input="\n".join(lines), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    values = done.stdout.split("\n")
    status = int(values[0])
    pairs = torch.tensor([[float(v) for v in line.split()] for line in values[1:1 + rows]], dtype=torch.float64)
    out = None
    if want_out:
        out = torch.tensor([float(v) for v in values[1 + rows:1 + rows + rows * cols]], dtype=torch.float64)
        out = out.reshape(rows, cols)
    return status, pairs[:, 0], pairs[:, 1], out


def _inputs(rows, cols, dtype, seed, scale=4.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * scale + shift).to(dtype)
    return x, g


def _close(actual, expected, dtype, what):
    expected = expected.detach().to(torch.float64)
    if dtype == torch.bfloat16:  # one bf16 rounding of an fp32 value, relative to the row's largest
        atol = 2 ** -7 * expected.abs().amax().clamp_min(1e-30).item()
        torch.testing.assert_close(actual, expected, rtol=2 ** -7, atol=atol, msg=what)
    else:
        torch.testing.assert_close(actual, expected, rtol=3e-5, atol=3e-6 * expected.abs().amax().item(), msg=what)


# (dtype, cols, cluster, cached, inplace, case, weighted) - every axis covered, the clusters up to 16
CROSS_ENTROPY = [
    (torch.float32, 1003, 1, True, False, 0, False),
    (torch.float32, 1003, 4, True, True, 1, True),
    (torch.float32, 997, 16, True, False, 1, True),
    (torch.float32, 1003, 3, False, True, 0, False),
    (torch.float32, 1003, 2, False, False, 1, True),
    (torch.bfloat16, 1003, 1, True, True, 0, False),
    (torch.bfloat16, 2051, 4, True, False, 1, True),
    (torch.bfloat16, 1003, 16, True, True, 1, False),
    (torch.bfloat16, 1003, 8, False, True, 1, True),
    (torch.bfloat16, 6, 2, True, False, 0, False),   # a row shorter than a pack: scalars only
]


@pytest.mark.parametrize("dtype,cols,cluster,cached,inplace,case,weighted", CROSS_ENTROPY,
                         ids=[f"{'bf16' if d == torch.bfloat16 else 'fp32'}-{c}cols-S{s}-{'smem' if k else 'streamed'}"
                              f"{'-inplace' if i else ''}-case{n}{'-weights' if w else ''}"
                              for d, c, s, k, i, n, w in CROSS_ENTROPY])
def test_cross_entropy_batch(program, dtype, cols, cluster, cached, inplace, case, weighted):
    """Loss, logsumexp and the gradient of `mean` (the factor over the counted weight) of five rows: one
    ignored (its lse asked for), one with an out-of-range target (reported; zero loss and gradient)."""
    rows = 5
    x, g = _inputs(rows, cols, dtype, seed=cols + cluster, shift=50.0 if case else 0.0)
    t = torch.randint(0, cols, (rows,), generator=g)
    t[1] = -100
    t[3] = cols + 7  # out of range
    w = (torch.rand(cols, generator=g, dtype=torch.float64) + 0.5).to(dtype) if weighted else None
    eps, zs = (0.1, 1e-3) if case else (0.0, 0.0)
    counted = [r for r in range(rows) if r not in (1, 3)]
    total = sum(float(w[t[r]]) if w is not None else 1.0 for r in counted)
    status, loss, lse, out = run(program, "cross_entropy", case, x, dtype=dtype, target=t, weight=w,
                                 params=(eps, zs), cluster=cluster, cached=cached, inplace=inplace,
                                 lse_of_ignored=True, factor=2.0, denom=total)
    assert status == 3
    z = x.to(torch.float64).requires_grad_()
    wd = w.to(torch.float64) if w is not None else None
    t_ok = t.clone()
    t_ok[3] = -100
    per_row = F.cross_entropy(z, t_ok, weight=wd, label_smoothing=eps, reduction="none")
    per_row = per_row + zs * torch.logsumexp(z, 1) ** 2 * (t_ok != -100)
    (2.0 / total * per_row.sum()).backward()
    _close(loss, per_row, torch.float32, "loss")
    _close(lse, torch.logsumexp(z, 1), torch.float32, "lse")  # asked for every row, the skipped ones too
    for r in range(rows):
        _close(out[r], z.grad[r], dtype, f"gradient row {r}")
    assert (out[1] == 0).all() and (out[3] == 0).all()


@pytest.mark.parametrize("cluster", [1, 4])
def test_forward_only_call_reads_no_output(program, cluster):
    """No output buffer: the row's share is still cached for the max and sums passes, no exponentials kept."""
    x, g = _inputs(3, 1003, torch.bfloat16, seed=5)
    t = torch.randint(0, 1003, (3,), generator=g)
    status, loss, lse, out = run(program, "cross_entropy", 0, x, dtype=torch.bfloat16, target=t, params=(0.0, 0.0),
                                 cluster=cluster, want_out=False)
    z = x.to(torch.float64)
    assert status == -1 and out is None
    _close(loss, F.cross_entropy(z, t, reduction="none"), torch.float32, "loss")
    _close(lse, torch.logsumexp(z, 1), torch.float32, "lse")


def test_extreme_logits_stay_accurate(program):
    """Logits near 1e4 and a row of -inf but one: the exponentials are taken at the row maximum."""
    x = torch.randn(3, 1003, generator=torch.Generator().manual_seed(9), dtype=torch.float64) + 1e4
    x[2] = float("-inf")
    x[2, 17] = 3.0
    x = x.float()
    t = torch.tensor([5, 900, 17])
    status, loss, lse, out = run(program, "cross_entropy", 1, x, target=t, params=(0.1, 0.0), cluster=4, factor=1.0)
    z = x.double().requires_grad_()
    per_row = F.cross_entropy(z, t, label_smoothing=0.1, reduction="none")
    assert status == -1
    _close(loss[:2], per_row[:2], torch.float32, "loss")
    per_row[:2].sum().backward()
    _close(out[:2], z.grad[:2], torch.float32, "gradient")
    _close(lse, torch.logsumexp(z, 1), torch.float32, "lse")


@pytest.mark.parametrize("dtype,cluster,cached", [(torch.float32, 2, True), (torch.bfloat16, 4, False),
                                                  (torch.bfloat16, 16, True)])
def test_probability_targets_batch(program, dtype, cluster, cached):
    x, g = _inputs(4, 1001, dtype, seed=cluster)
    y = torch.softmax(torch.randn(4, 1001, generator=g, dtype=torch.float64), 1).to(dtype)
    w = (torch.rand(1001, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    status, loss, _, out = run(program, "cross_entropy_prob", 1, x, dtype=dtype, y=y, weight=w, params=(0.2, 1e-3),
                               cluster=cluster, cached=cached, factor=0.25)
    z = x.double().requires_grad_()
    per_row = F.cross_entropy(z, y.double(), weight=w.double(), label_smoothing=0.2, reduction="none")
    per_row = per_row + 1e-3 * torch.logsumexp(z, 1) ** 2
    (0.25 * per_row.sum()).backward()
    assert status == -1
    _close(loss, per_row, torch.float32, "loss")
    for r in range(4):
        _close(out[r], z.grad[r], dtype, f"gradient row {r}")


@pytest.mark.parametrize("dtype,cluster", [(torch.float32, 1), (torch.bfloat16, 16)])
def test_softmax_map_batch(program, dtype, cluster):
    x, _ = _inputs(3, 2003, dtype, seed=11)
    _, _, _, out = run(program, "softmax", 0, x, dtype=dtype, cluster=cluster)
    for r in range(3):
        _close(out[r], torch.softmax(x.double()[r], 0), dtype, f"softmax row {r}")
