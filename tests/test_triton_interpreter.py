"""The triton target's generated kernels, executed by Triton's interpreter on CPU tensors (no GPU needed).

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, at the import of its module, so the
kernels run in a child process that sets it before importing anything (never by toggling the variable in
this one). There each kernel meets the same torch references as the numpy / torch / c kernels
(:func:`symxent.codegen.conformance.check_backend`: float32 and float64, logits up to 1e4, every case and
option of the kernel: label smoothing, z-loss, weights, probability targets, log_target, pos_weight).
"""
from pathlib import Path

import pytest

triton = pytest.importorskip("triton", reason="the triton package is not installed (Linux only)")

from symxent.codegen import kernels_for  # noqa: E402
from symxent.codegen.conformance import run_under_interpreter  # noqa: E402

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def interpreter_results():
    from symxent.codegen.conformance import triton_interpreter_results
    return triton_interpreter_results()


def test_the_triton_target_expresses_every_row_map_and_elementwise_kernel():
    from symxent.codegen import KERNELS
    from symxent.codegen.roles import Kind
    expected = sorted(name for name, loss in KERNELS.items() if loss.kind in (Kind.ROW, Kind.MAP, Kind.ELEMENTWISE))
    assert kernels_for("triton") == expected and "cross_entropy" in expected


@pytest.mark.parametrize("name", kernels_for("triton"))
def test_kernel_matches_torch_under_the_interpreter(interpreter_results, name):
    ok, detail = interpreter_results[name]
    assert ok, detail
    assert "comparisons with torch" in detail


@pytest.mark.parametrize("name", ["focal", "z_loss", "softcap"])
def test_user_loss_matches_torch_autograd_under_the_interpreter(interpreter_results, name):
    """A user's row loss from its formula (focal, the z-loss, Gemma-2's soft-capping) through the same template."""
    ok, detail = interpreter_results[f"user:{name}"]
    assert ok, detail
    assert "match torch autograd" in detail


def test_functional_backend_triton_matches_torch_on_a_covering_grid():
    """``backend="triton"`` through symxent.functional (every function; cross_entropy's options pairwise with
    the shape edges: a row longer than one class block, one class, no rows, K dimensions, -inf logits; every
    reduction and dtype), values and input gradients against torch (tests/_triton_grid.py, in a child process)."""
    import json

    done = run_under_interpreter([str(HERE / "_triton_grid.py")])
    lines = [line for line in done.stdout.splitlines() if line.startswith("GRID ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    grid = json.loads(lines[-1].removeprefix("GRID "))
    assert grid["ran"] >= 150 and not grid["failures"], grid["failures"][:10]


def test_backend_triton_on_a_cpu_tensor_without_the_interpreter_says_how():
    import torch

    import symxent.functional as sxf
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        sxf.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), backend="triton")


CHILD_COMPILE = """
import torch, torch.nn.functional as F, symxent.functional as S
x = torch.randn(6, 300, requires_grad=True); t = torch.randint(0, 300, (6,))
f = torch.compile(lambda x: S.cross_entropy(x, t, label_smoothing=0.1, backend="triton"), fullgraph=True,
                  backend="aot_eager")
out = f(x); (grad,) = torch.autograd.grad(out, x)
ref = F.cross_entropy(x, t, label_smoothing=0.1); (want,) = torch.autograd.grad(ref, x)
torch.testing.assert_close(out, ref); torch.testing.assert_close(grad, want)
print("COMPILED OK")
"""


def test_backend_triton_traces_with_fullgraph():
    """torch.compile(fullgraph=True) traces the triton backend's ops (aot_eager on CPU: inductor generates no Triton
    code for CPU tensors), forward and backward, under the interpreter."""
    done = run_under_interpreter(["-c", CHILD_COMPILE])
    assert "COMPILED OK" in done.stdout, done.stderr[-3000:]


def test_pytorchs_own_cases_on_backend_triton():
    """tests/test_torch_own_cases.py's triton cases (PyTorch's OpInfo samples, argument gradients and error inputs
    for the seven ops), run by pytest in a child process with TRITON_INTERPRET=1: every one agrees with torch."""
    import re

    done = run_under_interpreter(["-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:warnings",
                                  str(HERE / "test_torch_own_cases.py"), "-k", "triton"])
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 1000 and "failed" not in summary, summary
