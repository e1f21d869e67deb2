"""The triton target's generated kernels, executed by Triton's interpreter on CPU tensors (no GPU needed).

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, at the import of its module, so the
kernels run in a child process that sets it before importing anything (never by toggling the variable in
this one). There each kernel meets the same torch references as the numpy / torch / c kernels
(:func:`symxent.codegen.conformance.check_backend`: float32 and float64, logits up to 1e4, every case and
option of the kernel: label smoothing, z-loss, weights, probability targets, log_target, pos_weight).
"""
import json
import os
import subprocess
import sys

import pytest

triton = pytest.importorskip("triton", reason="the triton package is not installed (Linux only)")

from symxent.codegen import kernels_for  # noqa: E402

CHILD = """
import json, os, sys
assert os.environ.get("TRITON_INTERPRET") == "1"
from symxent.codegen.conformance import check_backend
results = {}
for name in sys.argv[1:]:
    try:
        results[name] = check_backend(name, "triton")
    except Exception as error:  # reported, not hidden
        results[name] = (False, f"{type(error).__name__}: {error}")
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def interpreter_results():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", CHILD, *kernels_for("triton")], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULTS "))


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
