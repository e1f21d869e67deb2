"""The CUDA target without a GPU: drift of codegen/cuda/, the printer, and the printed math run by the skeleton.

Each generated ``.cu`` file is included as it is, with the runtime's skeleton headers, into a host program
after ``symxent/cuda/emulate.h``, which plays the GPU's part with host threads (threads, CTAs, clusters,
barriers, warp shuffles, shared and distributed shared memory): a row kernel runs as it is (``rows_kernel``:
loads, the three passes, the merges over warps, CTAs and clusters, the target's patch), and its results are
compared with PyTorch's float64 autograd. tests/test_cuda_emulated.py runs whole batches the same way (bf16,
misaligned rows, in place, ignored and out-of-range targets, clusters of 16). What only a GPU can test: timing,
the memory model's weaker orders, the intrinsics' own accuracy (tests/test_cuda_gpu.py).
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from symxent.codegen import write_all
from symxent.codegen.cuda import CUDA_LOSSES, generate_cuda, user_loss_examples
from symxent.codegen.cuda.printer import cuda_printer
from symxent.codegen.cuda.target import SUM_EXP, SUM_LINEAR, SUM_PLAIN, CudaCodegenError, sum_kind

ROOT = Path(__file__).resolve().parents[1]
#: the runtime's skeleton headers, which the generated sources include
INCLUDE = ROOT / "symxent" / "runtime" / "include"


# --- drift and printing ---------------------------------------------------------------------------

def test_checked_in_cuda_sources_match_the_generator():
    """codegen/cuda/*.cu are what the generator writes now (regenerate: symxent codegen --all)."""
    drifted = write_all(ROOT / "codegen", check=True)
    assert [p for p in drifted if p.parent.name == "cuda"] == []


def test_printer_uses_fast_exp_and_multiplies_small_powers():
    x, lse = sp.symbols("x lse", real=True)
    p = cuda_printer({})
    assert p.doprint(sp.exp(x - lse)) == "sx_exp(-lse + x)"
    assert p.doprint(x**2) == "x*x"
    assert p.doprint(1 / x**3) == "1.0F/(x*x*x)"
    assert p.doprint(x ** sp.Symbol("g")) == "powf(x, g)"
    assert p.doprint(sp.log(x)) == "logf(x)"


@pytest.mark.parametrize("expr", ["a/s**2", "a*b/s**3", "a/(b + s)**2", "-a/s**2", "a/(2*s**2)", "(a + b)/s**4",
                                  "a/(b*s**2)", "s**2/a", "a*b**x/s**2", "1/s**3", "a/s"])
def test_printed_small_powers_keep_their_denominator_whole(expr):
    """``a/s**2`` prints as ``a/(s*s)``, never ``a/s*s`` (= a): the printed C, read back by SymPy, is the
    expression again (a regression: a squared denominator printed as a bare product)."""
    a, b, s, x = sp.symbols("a b s x", positive=True)
    names = {"a": a, "b": b, "s": s, "x": x}
    e = sp.sympify(expr, locals=names)
    printed = cuda_printer({}).doprint(e)
    back = sp.sympify(re.sub(r"(\d+\.\d*)F", r"\1", printed.replace("powf", "Pow")), locals=names)
    assert sp.simplify(sp.nsimplify(back) - e) == 0, (expr, printed)


def test_printer_reads_row_elements_as_locals_and_refuses_the_rest():
    z, w = sp.IndexedBase("z", real=True), sp.IndexedBase("w", real=True)
    a = sp.Symbol("a", integer=True)
    p = cuda_printer({z: "z_a"})
    assert p.doprint(z[a] * 2) == "2*z_a"
    with pytest.raises(ValueError, match="no element local"):
        p.doprint(w[a])
    with pytest.raises(Exception, match="KroneckerDelta"):
        p.doprint(sp.KroneckerDelta(a, sp.Symbol("c", integer=True)))


def test_sums_are_classified_by_how_they_follow_the_row_maximum():
    """exp(z - m) is rescaled, w*(z - m) shifted by sum(w), w unchanged; anything else is refused."""
    z, w, m = sp.symbols("z w m", real=True)
    assert sum_kind(w, m) == (SUM_PLAIN, None)
    assert sum_kind(w * sp.exp(z - m), m) == (SUM_EXP, None)
    assert sum_kind(w * (z - m), m) == (SUM_LINEAR, w)
    with pytest.raises(CudaCodegenError, match="one-pass merge"):
        sum_kind(sp.exp(z - m) * (z - m), m)


def test_softmax_entropy_takes_one_exponential_per_element():
    """The entropy of the softmax is lowered to sum(exp(z - m)) and sum(exp(z - m)*z): both taken at the row
    maximum, from one exponential per element (exp2 of log2(e)*(z - m)), which the output pass reuses."""
    from symxent.codegen import Loss
    from symxent.definitions import softmax, vector
    from symxent.definitions.symbols import i, n
    z = vector("z")
    entropy_of_softmax = -sp.Sum(softmax(z, i) * sp.log(softmax(z, i)), (i, 0, n - 1))
    text = generate_cuda(Loss.from_expr(entropy_of_softmax, name="softmax_entropy"))
    sums = text[text.index("void sums("):text.index("float loss(")]
    assert sums.count("sx_exp2(") == 1 and "e = sx_exp2(1.44269504F*(h0 + z_a));" in sums
    assert "s[0] += e;" in sums and "s[1] += e*z_a;" in sums
    assert "kCache = true" in text and "float e, const Row& row" in text


# --- the printed math, compiled for the host ----------------------------------------------------

PRELUDE = r"""
// the GPU's part played by host threads (symxent/cuda/emulate.h): the generated files compile on the host as
// they are, and their row kernels run through the skeleton itself (rows.cuh)
#include "symxent/cuda/emulate.h"
#include <cstdio>
#include <cstring>
#include <vector>
"""

ROW_RUNNER = r"""
// One row through the skeleton's own kernel (symxent/cuda/rows.cuh: rows_kernel under the host emulation),
// in a cluster of `cluster` CTAs of 256 threads, the row's share in shared memory or streamed (`cached`).
template <typename M, typename Case>
void run_row(long long cols, long long c, const std::vector<float>& z, const std::vector<float>& y,
             const std::vector<float>& w, bool has_w, const typename M::Params& prm, int cluster, bool cached) {
  std::vector<float> out(cols, NAN);
  float loss = NAN, lse = NAN;
  unsigned long long status = ~0ull;
  const int64_t target = c;
  symxent_cuda::emulate_rows<M, float, Case>(z.data(), y.data(), has_w ? w.data() : nullptr, &target, out.data(),
                                             &loss, &lse, nullptr, 1.0f, &status, 1, cols, -100, false, prm,
                                             cluster, cached);
  std::printf("%.9g %.9g\n", loss, lse);
  for (long long a = 0; a < cols; ++a) std::printf("%.9g\n", out[a]);
}

template <typename M, typename Case>
void run_elements(long long count, const std::vector<std::vector<float>>& inputs, const typename M::Params& prm) {
  for (long long i = 0; i < count; ++i) {
    float v[M::kInputs];
    for (int j = 0; j < M::kInputs; ++j) v[j] = inputs[j][i];
    std::printf("%.9g %.9g\n", Case::loss(v, prm), Case::grad(v, prm));
  }
}
"""


def _kernels():
    out = {name: loss for name, loss in CUDA_LOSSES.items()}
    out.update(user_loss_examples())
    return out


MAIN = r"""
int main(int argc, char** argv) {
  // stdin: kernel case count params... then the arrays (see the Python side)
  char name[64];
  int which, nparams, cluster, cached;
  long long count, c;
  if (std::scanf("%63s %d %lld %lld %d %d %d", name, &which, &count, &c, &cluster, &cached, &nparams) != 7) return 2;
  std::vector<double> params(nparams);
  for (auto& p : params) if (std::scanf("%lf", &p) != 1) return 2;
  int arrays;
  if (std::scanf("%d", &arrays) != 1) return 2;
  std::vector<std::vector<float>> data(arrays, std::vector<float>(count));
  std::vector<int> present(arrays);
  for (int k = 0; k < arrays; ++k) {
    if (std::scanf("%d", &present[k]) != 1) return 2;
    if (present[k]) for (auto& v : data[k]) if (std::scanf("%f", &v) != 1) return 2;
  }
${dispatch}
  return 3;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """One host program that includes every kernel's generated file as it is (the checked-in ones from
    codegen/cuda/, the user losses freshly generated) and the runtime's skeleton headers, and calls
    the printed Case structs through each module's own Params (``Module::params``)."""
    from symxent.codegen.cuda.target import CudaTarget
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no host C++ compiler")
    folder = tmp_path_factory.mktemp("printed_math")
    blocks, dispatch = [PRELUDE], []
    for name, loss in _kernels().items():
        path = ROOT / "codegen" / "cuda" / f"{name}.cu"
        if name not in CUDA_LOSSES:
            path = folder / f"{name}.cu"
            path.write_text(generate_cuda(loss))
        blocks.append(f'#include "{path}"')
        module = f"sx_{name}::Module"
        for index in range(len(CudaTarget().contract(loss)["cases"])):
            call = (f"run_elements<{module}, sx_{name}::Case{index}>(count, data, prm);"
                    if loss.kind == "elementwise" else
                    f"run_row<{module}, sx_{name}::Case{index}>(count, c, data[0], data[1], data[2], present[2], "
                    f"prm, cluster, cached != 0);")
            dispatch.append(f'  if (!std::strcmp(name, "{name}") && which == {index}) {{\n'
                            f"    if (nparams != {module}::kParams) return 4;\n"
                            f"    const auto prm = {module}::params(params.data());\n    {call}\n    return 0;\n  }}")
    blocks.append(ROW_RUNNER)
    blocks.append(MAIN.replace("${dispatch}", "\n".join(dispatch)))
    (folder / "harness.cpp").write_text("\n".join(blocks))
    result = subprocess.run([compiler, "-std=c++20", "-O1", "-pthread", f"-I{INCLUDE}", str(folder / "harness.cpp"),
                             "-o", str(folder / "harness")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-6000:]
    return folder / "harness"


def run_row(harness, name, case, z, target=-1, y=None, w=None, params=(), cluster=3, cached=True):
    """(loss, lse, output row) of one row through the skeleton's kernel on the host (``cluster`` CTAs; the row's
    shares in shared memory, or streamed from global memory)."""
    cols = len(z)
    arrays = [z, y if y is not None else [0.0] * cols, w]
    lines = [f"{name} {case} {cols} {target} {cluster} {int(cached)} {len(params)}",
             " ".join(repr(float(p)) for p in params), "3"]
    for values in arrays:
        lines.append("0" if values is None else "1 " + " ".join(repr(float(v)) for v in values))
    out = subprocess.run([str(harness)], input="\n".join(lines), capture_output=True, text=True, check=True).stdout
    first, *rest = out.split("\n")
    loss, lse = map(float, first.split())
    return loss, lse, torch.tensor([float(v) for v in rest if v.strip()], dtype=torch.float64)


def run_elements(harness, name, case, inputs, params=()):
    count = len(inputs[0])
    lines = [f"{name} {case} {count} -1 1 1 {len(params)}", " ".join(repr(float(p)) for p in params),
             str(len(inputs))]
    lines += ["1 " + " ".join(repr(float(v)) for v in values) for values in inputs]
    out = subprocess.run([str(harness)], input="\n".join(lines), capture_output=True, text=True, check=True).stdout
    pairs = [tuple(map(float, line.split())) for line in out.strip().split("\n")]
    return torch.tensor([p[0] for p in pairs], dtype=torch.float64), torch.tensor([p[1] for p in pairs], dtype=torch.float64)


def _fp32(values):
    """Values exactly representable in fp32 (the harness reads fp32): the reference sees the same inputs."""
    return values.float().double()


def _row(seed, cols=11, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return _fp32(torch.randn(cols, generator=g, dtype=torch.float64) * scale)


def _close(actual, expected, rtol=2e-5, atol=2e-6):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float64), expected.detach().to(torch.float64),
                               rtol=rtol, atol=atol)


CE_OPTIONS = [(0.0, 0.0, False), (0.0, 0.0, True), (0.1, 0.0, True), (0.0, 1e-2, False), (0.2, 1e-2, True)]


@pytest.mark.parametrize("eps,zs,weighted", CE_OPTIONS, ids=["plain", "weight", "smoothing+weight", "z_loss",
                                                            "all_options"])
def test_printed_cross_entropy_matches_torch(harness, eps, zs, weighted):
    """loss and gradient of one row, every option: PyTorch's cross_entropy plus lse_square_scale*lse^2."""
    z = _row(1).requires_grad_()
    w = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5 if weighted else None
    c = 4
    case = 0 if eps == 0 and zs == 0 else 1
    loss, lse, grad = run_row(harness, "cross_entropy", case, z.tolist(), c, w=None if w is None else w.tolist(),
                              params=(eps, zs))
    expected = F.cross_entropy(z[None], torch.tensor([c]), weight=w, label_smoothing=eps, reduction="sum")
    expected = expected + zs * torch.logsumexp(z, 0) ** 2
    expected.backward()
    _close(loss, expected)
    _close(lse, torch.logsumexp(z, 0).detach())
    _close(grad, z.grad)


@pytest.mark.parametrize("cluster,cached", [(1, True), (2, True), (5, True), (3, False)],
                         ids=["one_cta", "cluster_2", "cluster_5", "streamed"])
@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["moderate", "huge_logits"])
def test_row_statistics_over_a_cluster(harness, cluster, cached, offset):
    """Ascending logits (the maximum in the last CTA's share), every option, the row split over CTAs of a
    cluster (merged through their shared memory) or streamed; logits near 1e4 (smoothing's cancellation) stay
    accurate to fp32 (the sums are taken at the row maximum)."""
    z = _fp32(torch.sort(_row(19, cols=203))[0] + offset).requires_grad_()
    w = _fp32(torch.rand(203, dtype=torch.float64, generator=torch.Generator().manual_seed(20)) + 0.5)
    c, eps, zs = 150, 0.2, 1e-3 if offset == 0 else 0.0
    loss, lse, grad = run_row(harness, "cross_entropy", 1, z.tolist(), c, w=w.tolist(), params=(eps, zs),
                              cluster=cluster, cached=cached)
    expected = F.cross_entropy(z[None], torch.tensor([c]), weight=w, label_smoothing=eps, reduction="sum")
    expected = expected + zs * torch.logsumexp(z, 0) ** 2
    expected.backward()
    _close(loss, expected.detach(), rtol=2e-5, atol=1e-6)
    _close(lse, torch.logsumexp(z, 0).detach(), rtol=1e-7, atol=0)
    _close(grad, z.grad)


@pytest.mark.parametrize("eps,zs", [(0.0, 0.0), (0.15, 0.0), (0.0, 1e-2)])
def test_printed_cross_entropy_with_probability_targets_matches_torch(harness, eps, zs):
    z = _row(3).requires_grad_()
    y = torch.softmax(_row(4), 0)
    w = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) + 0.5
    case = 0 if eps == 0 and zs == 0 else 1
    loss, _, grad = run_row(harness, "cross_entropy_prob", case, z.tolist(), -1, y=y.tolist(), w=w.tolist(),
                            params=(eps, zs))
    expected = F.cross_entropy(z[None], y[None], weight=w, label_smoothing=eps, reduction="sum")
    expected = expected + zs * torch.logsumexp(z, 0) ** 2
    expected.backward()
    _close(loss, expected)
    _close(grad, z.grad)


def test_printed_nll_matches_torch(harness):
    logp = torch.log_softmax(_row(6), 0).requires_grad_()
    w = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(7)) + 0.5
    loss, _, grad = run_row(harness, "nll", 0, logp.tolist(), 9, w=w.tolist())
    expected = F.nll_loss(logp[None], torch.tensor([9]), weight=w, reduction="sum")
    expected.backward()
    _close(loss, expected)
    _close(grad, logp.grad)


@pytest.mark.parametrize("name,fn", [("softmax", torch.softmax), ("log_softmax", torch.log_softmax)])
def test_printed_row_maps_and_their_backward_match_torch(harness, name, fn):
    z = _row(8).requires_grad_()
    out = fn(z, 0)
    _, _, printed = run_row(harness, name, 0, z.tolist())
    _close(printed, out)
    go = _row(9)
    out.backward(go)
    _, _, printed_grad = run_row(harness, name, 1, out.detach().tolist(), y=go.tolist())
    _close(printed_grad, z.grad)


def test_printed_focal_loss_matches_its_definition(harness):
    z, c, gamma = _row(10).requires_grad_(), 2, 2.0
    loss, _, grad = run_row(harness, "focal", 0, z.tolist(), c, params=(gamma,))
    logp = torch.log_softmax(z, 0)[c]
    expected = -(1 - logp.exp()) ** gamma * logp
    expected.backward()
    _close(loss, expected)
    _close(grad, z.grad)


def test_printed_softcapped_cross_entropy_matches_its_definition(harness):
    z, c, cap = (_row(11, scale=20.0)).requires_grad_(), 7, 15.0
    loss, lse, grad = run_row(harness, "softcap", 0, z.tolist(), c, params=(cap,))
    capped = cap * torch.tanh(z / cap)
    expected = F.cross_entropy(capped[None], torch.tensor([c]), reduction="sum")
    expected.backward()
    _close(loss, expected)
    _close(lse, torch.logsumexp(capped, 0).detach())
    _close(grad, z.grad)


def test_printed_user_z_loss_matches_its_definition(harness):
    z, c, zs = _row(18).requires_grad_(), 3, 1e-2
    loss, _, grad = run_row(harness, "z_loss", 0, z.tolist(), c, params=(zs,))
    expected = F.cross_entropy(z[None], torch.tensor([c]), reduction="sum") + zs * torch.logsumexp(z, 0) ** 2
    expected.backward()
    _close(loss, expected)
    _close(grad, z.grad)


@pytest.mark.parametrize("x_scale", [3.0, 800.0], ids=["moderate", "extreme"])
def test_printed_bce_with_logits_matches_torch(harness, x_scale):
    """Stable at |x| = 800 (the printed log_sigmoid is the proved stable form)."""
    x = _row(12, cols=9, scale=x_scale).requires_grad_()
    t = torch.rand(9, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    pw = torch.rand(9, dtype=torch.float64, generator=torch.Generator().manual_seed(14)) * 3
    w = torch.rand(9, dtype=torch.float64, generator=torch.Generator().manual_seed(15))
    loss, grad = run_elements(harness, "bce_with_logits", 0, [x.tolist(), t.tolist(), pw.tolist(), w.tolist()])
    expected = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction="none")
    expected.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    _close(loss, expected, rtol=2e-5, atol=1e-4 if x_scale > 100 else 2e-6)
    _close(grad, x.grad)


def test_printed_bce_matches_torch_with_clamped_logs_and_tiny_probabilities(harness):
    """Logs clamped at -100 at p = 0 and 1; p = 1e-30 with t = 0 keeps its loss 1e-30 (log1p)."""
    p = torch.tensor([0.0, 1e-40, 1e-30, 0.3, 0.5, 0.9, 1.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 0.0, 0.2, 1.0, 0.0, 1.0], dtype=torch.float64)
    w = torch.full_like(p, 0.7)
    loss, _ = run_elements(harness, "bce", 0, [p.tolist(), t.tolist(), w.tolist()])
    expected = F.binary_cross_entropy(p, t, weight=w, reduction="none")
    _close(loss, expected, rtol=2e-5, atol=1e-4)
    assert loss[2] == pytest.approx(float(expected[2]), rel=1e-5)


@pytest.mark.parametrize("log_target", [True, False])
def test_printed_kl_div_matches_torch(harness, log_target):
    x = torch.log_softmax(_row(16, cols=7), 0).requires_grad_()
    t = torch.softmax(_row(17, cols=7), 0)
    t = t.log() if log_target else torch.cat([t[:-1], torch.zeros(1, dtype=torch.float64)])
    case = 0 if log_target else 1  # the cases of kl_div: log_target True, then False
    loss, grad = run_elements(harness, "kl_div", case, [x.tolist(), t.tolist()])
    expected = F.kl_div(x, t, reduction="none", log_target=log_target)
    expected.sum().backward()
    _close(loss, expected)
    _close(grad, x.grad)


def test_true_class_gradient_is_one_fp32_expression():
    """At the target class the kernel adds the printed scatter (-w_c) to the printed dense value
    (w_c p_c) in fp32 and rounds once: p - 1 is never formed in bf16."""
    text = (ROOT / "codegen" / "cuda" / "cross_entropy.cu").read_text()
    start = text.index("struct Case0 : RowCase<Row, Params> {")
    plain = text[start:text.index("\n};", start)]
    assert "h[0] = row_scale*w_c/s3;" in plain and "return e*h0;" in plain and "return -w_c;" in plain
    skeleton = (INCLUDE / "symxent" / "cuda" / "rows.cuh").read_text()  # what every row kernel runs
    assert "const float at_target = Case::kScatter ? scale * Case::scatter(row, prm) : 0.0f;" in skeleton
    assert "o[i] += i == patch_lane ? at_target : 0.0f;" in skeleton and "ov[v] = Vec<T>::pack(o);" in skeleton


# --- the runtime's bookkeeping from the contracts (no GPU needed) -----------------------------------

def _kernel(kind_class, loss):
    """A runtime kernel over ``loss``'s contract as the generator writes it (no compiled module)."""
    from symxent.codegen.cuda.target import CudaTarget
    from symxent.runtime.cuda import CudaContract
    return kind_class(CudaContract(**CudaTarget().contract(loss)), module=None)


def test_checked_in_contracts_are_the_generators():
    """codegen/cuda/NAME.py holds the contract the generator computes (what the runtime reads)."""
    import importlib

    from symxent.codegen.cuda.target import CudaTarget
    from symxent.runtime.cuda import CudaContract, generated_kernels
    assert generated_kernels() == sorted(CUDA_LOSSES)
    for name, loss in CUDA_LOSSES.items():
        contract = importlib.import_module(f"symxent_codegen.cuda.{name}").CONTRACT
        assert contract == CudaContract(**CudaTarget().contract(loss)), name
        assert f"_BINDING({name})" in contract.pybind and '#include "symxent/cuda/binding.h"' in contract.pybind


def test_loader_picks_the_plain_case_only_without_smoothing_and_z_loss():
    """cross_entropy's case 0 (plain) holds when label_smoothing == 0 and lse_square_scale == 0."""
    from symxent.runtime.cuda import RowKernel
    kernel = _kernel(RowKernel, CUDA_LOSSES["cross_entropy"])
    assert list(kernel.params) == ["label_smoothing", "lse_square_scale"]
    for options, case in [({}, 0), ({"label_smoothing": 0.0}, 0), ({"label_smoothing": 0.1}, 1),
                          ({"lse_square_scale": 1e-4}, 1)]:
        values, by_name = kernel.param_values(options)
        assert kernel.case_index(by_name) == case, options
    assert kernel.param_values({"label_smoothing": 0.25})[0] == [0.25, 0.0]
    with pytest.raises(TypeError, match="unknown option"):
        kernel.param_values({"smoothing": 0.1})


def test_loader_requires_user_loss_parameters_and_selects_flag_cases():
    from symxent.runtime.cuda import ElementwiseKernel, MapKernel, RowKernel
    focal = _kernel(RowKernel, user_loss_examples()["focal"])
    with pytest.raises(TypeError, match="'gamma' is required"):
        focal.param_values({})
    assert focal.param_values({"gamma": 2})[0] == [2.0]
    kl = _kernel(ElementwiseKernel, CUDA_LOSSES["kl_div"])
    assert kl.inputs == ("input", "target")
    assert kl.case_index(kl.param_values({"log_target": True})[1]) == 0
    assert kl.case_index(kl.param_values({"log_target": False})[1]) == 1
    softmax = _kernel(MapKernel, CUDA_LOSSES["softmax"])
    assert softmax.case_index({}, backward=False) == 0 and softmax.case_index({}, backward=True) == 1


def test_without_a_usable_gpu_loading_says_why():
    from symxent.runtime.cuda import load_cuda_kernel, unavailable_reason
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("a usable GPU is present")
    with pytest.raises(RuntimeError, match="unavailable: " + re.escape(reason)):
        load_cuda_kernel("cross_entropy")
    with pytest.raises(KeyError, match="unknown CUDA kernel"):
        load_cuda_kernel("no_such_loss")


def test_a_parameter_named_like_a_kernel_value_is_refused():
    """A user parameter called ``row`` would clash with the kernels' own names: a clear error instead."""
    from symxent.codegen import Loss
    from symxent.definitions import log_softmax, vector
    from symxent.definitions.symbols import c
    row = sp.Symbol("row", positive=True)
    with pytest.raises(CudaCodegenError, match="taken by the CUDA kernels"):
        generate_cuda(Loss.from_expr(-row * log_softmax(vector("z"), c), name="scaled"))
