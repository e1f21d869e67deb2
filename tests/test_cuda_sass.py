"""The cross-entropy CUDA kernels' hot loops, read from their sm_90 SASS (no GPU: nvcc and cuobjdump).

``benchmarks/sass_table.py`` compiles the generated ``codegen/cuda/cross_entropy.cu`` and counts, by issue 15's
method, the instructions and MUFU.EX2 per element of the loops a long row runs. Issue 15's budgets (<= 12
instructions and one EX2 per element without options, <= 16 with them, <= 64 registers) are not met yet; this test
holds what is reached (after ``sx_exp``: 22.1 / 20.6 / 20.8 without options, 36.5 / 36.5 / 35.4 with them, in bf16 /
fp16 / fp32) so that a change cannot make the loops longer unnoticed, and no kernel may spill. Lower the limits as
the kernels get leaner; the issue's budgets are the goal.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "sass_table.py"

#: (case, dtype) -> the most instructions per element allowed today (a little above what is measured)
INSTRUCTIONS = {(0, "bf16"): 22.5, (0, "fp16"): 21.0, (0, "fp32"): 21.0,
                (1, "bf16"): 37.0, (1, "fp16"): 37.0, (1, "fp32"): 36.0}
EX2_PER_ELEMENT = 2.25  # one exp per element in each pass, plus the rare rebase of the running maximum


def _tools_missing():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import sass_table
        for name in ("nvcc", "cuobjdump"):
            sass_table.tool(name)
    except (SystemExit, Exception) as error:  # noqa: BLE001 - reported as the skip reason
        return f"{error}"
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return None if shutil.which("c++filt") else "c++filt not found (names are demangled with it)"


MISSING = _tools_missing()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    if MISSING:
        pytest.skip(f"needs nvcc and cuobjdump (CUDA, or the triton wheel's copy): {MISSING}")
    out = tmp_path_factory.mktemp("sass") / "cross_entropy.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "cross_entropy", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return [k for k in json.loads(out.read_text())["kernels"] if k["kernel"] == "rows"]


def test_every_case_and_dtype_is_measured(kernels):
    assert sorted((k["case"], k["dtype"]) for k in kernels) == sorted(INSTRUCTIONS)


@pytest.mark.parametrize("case, dtype", sorted(INSTRUCTIONS))
def test_hot_loops_are_no_longer_than_today(kernels, case, dtype):
    (kernel,) = [k for k in kernels if (k["case"], k["dtype"]) == (case, dtype)]
    assert isinstance(kernel["ipe"], float) and 0 < kernel["ipe"] <= INSTRUCTIONS[case, dtype], kernel["ipe"]
    assert 0 < kernel["ex2_pe"] <= EX2_PER_ELEMENT, kernel["ex2_pe"]


def test_no_spills(kernels):
    spilled = [(k["case"], k["dtype"], k["LOCAL"], k["spill_instructions"]) for k in kernels
               if k["LOCAL"] or k["spill_instructions"]]
    assert not spilled
