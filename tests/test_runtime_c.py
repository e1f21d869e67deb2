"""The C runtime: compiled at first use with the system compiler, cached on disk (a corrupt cached
library is rebuilt, concurrent first uses stay correct), float32 and float64, fused row passes,
threads over rows, bad input rejected before any C runs; the runtime never loads the generator."""
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from symxent.runtime import c as build
from symxent.runtime.cache import CacheWarning
from symxent.runtime.kernels import load_kernel

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")


def stable_cross_entropy(z, target):
    """Reference in float64 NumPy: max-shifted logsumexp minus the target logit; grad softmax - onehot."""
    z = z.astype(np.float64)
    m = z.max(1, keepdims=True)
    e = np.exp(z - m)
    lse = m[:, 0] + np.log(e.sum(1))
    grad = e / e.sum(1, keepdims=True)
    grad[np.arange(len(z)), target] -= 1
    return lse - z[np.arange(len(z)), target], grad


def test_compile_is_cached_by_source_hash(tmp_path, monkeypatch):
    """The same source compiles once (same library path, untouched); another source is a new library."""
    monkeypatch.setenv("SYMXENT_CACHE_DIR", str(tmp_path))
    source = "double symxent_probe(double x) { return 2 * x; }\n"
    first = build.compile_source(source, "probe")
    stamp = first.stat().st_mtime_ns
    second = build.compile_source(source, "probe")
    assert first == second and second.stat().st_mtime_ns == stamp and first.parent == tmp_path
    assert build.compile_source(source + "\n", "probe") != first


def test_compile_error_is_reported_with_the_compiler_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMXENT_CACHE_DIR", str(tmp_path))
    with pytest.raises(build.BuildError, match="failed"):
        build.compile_source("this is not C", "broken")


def test_flags_never_include_fast_math():
    """-ffast-math breaks inf/nan semantics: never used."""
    assert not any("fast-math" in flag for flag in build.flags())
    assert "-O3" in build.flags() and "-fno-math-errno" in build.flags()


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-6), (np.float64, 1e-13)], ids=["float32", "float64"])
def test_c_cross_entropy_at_extreme_logits(dtype, tol):
    """Logits +-1e4 and a row of -1e4: finite and equal to the stable float64 reference."""
    z = np.random.default_rng(0).normal(size=(4, 300)) * 5
    z[0, 7], z[1, :], z[1, 3], z[2, :] = 1e4, -1e4, -1e4 + 1, 1e4
    target = np.array([7, 3, 0, 299])
    loss, grad, _ = load_kernel("cross_entropy", "c")(z.astype(dtype), target, np.ones(300, dtype), 0.0, 0.0, True)
    want_loss, want_grad = stable_cross_entropy(z.astype(dtype), target)
    assert loss.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(grad, want_grad, rtol=tol, atol=tol)


def test_c_threads_split_rows_without_changing_results(monkeypatch):
    """One thread or several: the same bits (each row is computed by one thread)."""
    z = np.random.default_rng(2).normal(size=(600, 500)).astype(np.float32)
    target = np.random.default_rng(3).integers(0, 500, 600)
    kernel = load_kernel("cross_entropy", "c")
    monkeypatch.setenv("SYMXENT_NUM_THREADS", "1")
    one = kernel(z, target, np.ones(500, np.float32), 0.1, 0.0, True)
    monkeypatch.setenv("SYMXENT_NUM_THREADS", "3")
    three = kernel(z, target, np.ones(500, np.float32), 0.1, 0.0, True)
    np.testing.assert_array_equal(one[0], three[0])
    np.testing.assert_array_equal(one[1], three[1])


def test_c_target_out_of_range_is_an_index_error_before_any_c_runs():
    """An out-of-range class index would read outside the row: PyTorch's error instead."""
    z = np.zeros((2, 3))
    with pytest.raises(IndexError, match="Target 3 is out of bounds."):
        load_kernel("cross_entropy", "c")(z, np.array([0, 3]), np.ones(3), 0.0, 0.0, True)


def test_c_rejects_unsupported_dtypes_and_shapes():
    with pytest.raises(TypeError, match="float32 or float64"):
        load_kernel("softmax", "c")(np.zeros((2, 3), np.float16))
    with pytest.raises(ValueError, match="class vector"):
        load_kernel("cross_entropy", "c")(np.zeros((2, 3)), np.array([0, 1]), np.ones(4), 0.0, 0.0, True)


def test_c_elementwise_kernel_keeps_the_input_shape():
    """Flat kernels accept any shape (same for every argument) and return it."""
    x = np.linspace(-5, 5, 12).reshape(3, 4)
    loss, grad = load_kernel("bce_with_logits", "c")(x, np.zeros_like(x), np.ones_like(x), np.ones_like(x), True)
    assert loss.shape == (3, 4) and grad.shape == (3, 4)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-x)), rtol=1e-14)


def test_c_softmax_of_an_empty_batch():
    """Zero rows: empty outputs, no call into C."""
    out = load_kernel("softmax", "c")(np.zeros((0, 5)))
    assert out.shape == (0, 5)


# --- a cache that heals itself -------------------------------------------------------------------------

def _corrupt_cached_libraries(folder):
    libraries = list(folder.glob("*.so"))
    for library in libraries:
        library.write_bytes(library.read_bytes()[:100])  # truncated: "file too short" on load
    return libraries


def test_a_corrupt_cached_library_is_rebuilt_and_reported_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMXENT_CACHE_DIR", str(tmp_path))
    import ctypes
    source = "double symxent_twice(double x) { return 2 * x; }\n"
    build.compile_source(source, "twice")  # in the cache, not loaded by this process yet
    assert _corrupt_cached_libraries(tmp_path)
    with pytest.warns(CacheWarning, match="could not be loaded"):
        library = build.load_source(source, "twice")
    library.symxent_twice.restype, library.symxent_twice.argtypes = ctypes.c_double, [ctypes.c_double]
    assert library.symxent_twice(21.0) == 42.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healthy again: no second warning
        build.load_source(source, "twice")


_CALL = """
import numpy as np, symxent.functional as F
z = np.random.default_rng(0).normal(size=(64, 300))
t = np.arange(64) % 300
loss, grad = F.cross_entropy(z, t, backend="c", return_grad=True)
ref, _ = F.cross_entropy(z, t, backend="numpy", return_grad=True)
assert abs(float(loss) - float(ref)) < 1e-12, (loss, ref)
print("ok")
"""


def test_a_corrupt_cache_in_a_fresh_process_is_rebuilt_not_a_crash(tmp_path):
    env = {**os.environ, "SYMXENT_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", _CALL], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0 and first.stdout.strip() == "ok", first.stderr
    assert _corrupt_cached_libraries(tmp_path)
    second = subprocess.run([sys.executable, "-c", _CALL], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0 and second.stdout.strip() == "ok", second.stderr
    assert "rebuilt" in second.stderr


def test_concurrent_first_use_from_several_processes_is_correct(tmp_path):
    env = {**os.environ, "SYMXENT_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.Popen([sys.executable, "-c", _CALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0 and out.strip() == "ok", err


# --- the runtime alone ------------------------------------------------------------------------------------

_ISOLATION = """
import sys, numpy as np
import symxent.functional as F
z, t = np.random.default_rng(0).normal(size=(4, 5)), np.array([0, 1, 2, 4])
for backend in {backends}:
    x = z if backend != "torch" else __import__("torch").tensor(z)
    tt = t if backend != "torch" else __import__("torch").tensor(t)
    F.cross_entropy(x, tt, backend=backend)
    F.softmax(x, 1, backend=backend)
    F.binary_cross_entropy_with_logits(x, x * 0 + 0.5, backend=backend)
loaded = sorted(m for m in sys.modules if m.startswith(("symxent.codegen", "symxent.prove", "sympy")))
print(",".join(loaded))
"""


@pytest.mark.parametrize("backends, forbidden", [
    (("numpy", "c"), ("symxent.codegen", "symxent.prove", "sympy")),
    (("torch",), ("symxent.codegen", "symxent.prove")),  # torch itself may import sympy
], ids=["numpy_and_c", "torch"])
def test_calls_load_neither_the_generator_nor_the_prover(backends, forbidden):
    out = subprocess.run([sys.executable, "-c", _ISOLATION.format(backends=backends)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = [m for m in out.stdout.strip().split(",") if m]
    assert not [m for m in loaded if m.startswith(forbidden)], loaded


_CUDA_ISOLATION = """
import sys, torch
import symxent.functional as F
from symxent.runtime import cuda
contracts = [cuda.checked_in(name)[0] for name in cuda.generated_kernels()]
assert {c.kind for c in contracts} == {"row", "map", "elementwise"}, contracts
x, t = torch.randn(4, 5, device="cuda" if torch.cuda.is_available() else "cpu"), torch.tensor([0, 1, 2, 4])
for call in (lambda: F.cross_entropy(x, t.to(x.device), backend="cuda"), lambda: F.softmax(x, 1, backend="cuda"),
             lambda: F.binary_cross_entropy_with_logits(x, x * 0 + 0.5, backend="cuda")):
    try:
        call()  # runs on a usable GPU; elsewhere fails saying why, after reading the kernel's contract
    except (RuntimeError, TypeError) as exc:
        print("refused:", exc, file=sys.stderr)
loaded = sorted(m for m in sys.modules if m.startswith(("symxent.codegen", "symxent.prove")))
print(",".join(loaded))
"""


_DISTRIBUTED = """
import sys, torch
from symxent.distributed import shard_kernels
z = torch.randn(3, 5)
parts = shard_kernels.shard_partials(z, z.max(1).values, torch.tensor([0, -1, 4]), None, smoothing=True)
assert parts.sum_exp.shape == (3,)
print(",".join(sorted(m for m in sys.modules if m.startswith(("symxent.codegen", "symxent.prove")))))
"""


def test_the_vocab_parallel_shard_kernels_run_without_the_generator_or_the_prover():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", _DISTRIBUTED], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout


def test_the_cuda_backend_reads_contracts_without_the_generator_or_the_prover():
    """The CUDA runtime takes each kernel's parameters and cases from its checked-in contract
    (``codegen/cuda/NAME.py``): calling the cuda backend loads no generator or prover module."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", _CUDA_ISOLATION], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout
