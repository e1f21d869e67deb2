#!/usr/bin/env bash
# Every GPU check the open issues name, in priority order, each stage time-boxed, in one command of
# <= ~8.5 minutes (the device lease is 15 minutes, start included). Run from the repository root on a
# machine with a Hopper GPU, PyTorch with CUDA, nvcc and ninja:
#     bash benchmarks/gpu_checks.sh [OUTDIR]
# Stages: build every CUDA module in parallel; the GPU tests (cuda kernels, then the functional cuda
# backend); the benchmark at (8192, 128256) bf16 / fp32 with the copy limit; compute-sanitizer memcheck
# (every GPU test) and racecheck (one case); ncu on the cross-entropy row kernel; last, the fused linear +
# cross-entropy benchmark at (8192, 4096, 128256) bf16. Logs go to OUTDIR ($OUT or ./gpu_out).
# QUICK=1: the build and the GPU tests only (about 5 minutes), e.g. after a change of the host side.
set -u
OUTDIR="${1:-${OUT:-gpu_out}}"
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 SYMXENT_CACHE_DIR=/tmp/symxent_cache
# the checked-in generated code is the package symxent_codegen (pyproject's mapping), without an install:
mkdir -p /tmp/symxent_shim && ln -sfn "$PWD/codegen" /tmp/symxent_shim/symxent_codegen
export PYTHONPATH="$PWD:/tmp/symxent_shim${PYTHONPATH:+:$PYTHONPATH}"
PYTEST="python3 -m pytest -o addopts= -p no:cacheprovider -q -rfE"
stage() { echo; echo "=== $1 ($(date +%T))"; }

stage "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
nvcc --version | tail -2
python3 -c "import torch, sympy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'sympy', sympy.__version__)"

stage "build every CUDA module, in parallel"
cat > /tmp/symxent_build_all.py <<'PY'
import concurrent.futures as cf, multiprocessing as mp, time
def build(name):
    t = time.time()
    from symxent.runtime.cuda import generated_kernels, load_cuda_kernel
    if name in generated_kernels():
        load_cuda_kernel(name)
    else:
        from symxent.codegen.cuda import compile_cuda_loss, user_loss_examples
        compile_cuda_loss(user_loss_examples()[name])
    return name, time.time() - t
if __name__ == "__main__":  # the spawned workers import this file too, and only run build()
    from symxent.codegen.cuda import user_loss_examples
    from symxent.runtime.cuda import generated_kernels
    names = generated_kernels() + list(user_loss_examples())
    with cf.ProcessPoolExecutor(len(names), mp_context=mp.get_context("spawn")) as pool:
        for f in cf.as_completed([pool.submit(build, n) for n in names]):
            try:
                n, s = f.result(); print(f"built {n} in {s:.0f} s")
            except Exception as e:
                print("BUILD FAILED:", type(e).__name__, str(e)[-3000:])
PY
# a file, not stdin: the spawned workers re-import the main module
timeout 150 python3 /tmp/symxent_build_all.py 2>&1 | tee "$OUTDIR/build.log"

stage "GPU tests: generated CUDA kernels"
timeout 150 $PYTEST tests/test_cuda_gpu.py -m "gpu and not slow" --junitxml="$OUTDIR/test_cuda_gpu.xml" 2>&1 \
    | tee "$OUTDIR/test_cuda_gpu.log" | tail -40
stage "GPU tests: symxent.functional backend='cuda'"
timeout 90 $PYTEST tests/test_functional_cuda_backend.py -m gpu --junitxml="$OUTDIR/test_functional_cuda.xml" 2>&1 \
    | tee "$OUTDIR/test_functional_cuda.log" | tail -25

stage "GPU tests: symxent.functional backend='triton' natively (the interpreter grid of CI, on cuda)"
SYMXENT_TRITON_DEVICE=cuda timeout 120 python3 tests/_triton_grid.py 2>&1 | tee "$OUTDIR/triton_grid.log" | tail -5

if [ -n "${QUICK:-}" ]; then stage "done (QUICK: no benchmark, sanitizers or ncu)"; exit 0; fi

stage "benchmark (8192, 128256) bf16 / fp32 with the copy limit, Liger-Kernel if carried"
timeout 130 python3 benchmarks/bench_cuda.py --shapes 8192x128256 --dtypes bf16 fp32 --warmup 3 --repeats 10 \
    --json "$OUTDIR/bench_cuda.json" 2>&1 | tee "$OUTDIR/bench_cuda.log" | grep -v Warning

stage "compute-sanitizer memcheck (every GPU test but the slow one)"
timeout 150 compute-sanitizer --tool memcheck --print-limit 20 $PYTEST tests/test_cuda_gpu.py -m "gpu and not slow" \
    > "$OUTDIR/memcheck.log" 2>&1; echo "exit $?"; grep -E "passed|failed|ERROR SUMMARY|^FAILED" "$OUTDIR/memcheck.log" | tail -12
stage "compute-sanitizer racecheck (one case)"
timeout 40 compute-sanitizer --tool racecheck --print-limit 20 \
    $PYTEST tests/test_cuda_gpu.py -m "gpu and not slow" -x -k "matches_torch and fp32 and mean and plain" \
    > "$OUTDIR/racecheck.log" 2>&1; echo "exit $?"; tail -8 "$OUTDIR/racecheck.log"

stage "ncu: the cross-entropy row kernel at (8192, 128256) bf16 and fp32"
cat > /tmp/ncu_one.py <<'PY'
import torch
from symxent.runtime import cuda_autograd as cx
for dtype in (torch.bfloat16, torch.float32):
    x = (torch.randn(8192, 128256, device="cuda") * 2).to(dtype).requires_grad_()
    t = torch.randint(0, 128256, (8192,), device="cuda"); t[::17] = -100
    for _ in range(2):
        cx.cross_entropy(x, t, inplace_backward=True).backward(); x.grad = None
    torch.cuda.synchronize(); del x
PY
# the row kernel only (not scale_rows_kernel, not torch's randn): bf16's second call, then fp32's two
timeout 90 ncu --clock-control none -k regex:^rows_kernel --launch-skip 1 --launch-count 3 --section SpeedOfLight \
    --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis python3 /tmp/ncu_one.py \
    > "$OUTDIR/ncu.log" 2>&1; echo "exit $?"
grep -E "rows_kernel|Duration|DRAM Throughput|Compute \(SM\)|Registers Per|Achieved Occ|Theoretical Occ|Cluster Size|Dynamic Shared|Block Limit" "$OUTDIR/ncu.log" | head -60
# last, after the checks the project's priorities put first (GPU tests, benchmark, sanitizer, ncu)
stage "fused linear + cross-entropy at (8192, 4096, 128256) bf16, with Liger-Kernel's if installed (issue 13)"
timeout 180 python3 benchmarks/bench_linear_ce.py --device cuda --repeat 5 2>&1 | tee "$OUTDIR/bench_linear_ce.log" \
    | grep -v Warning
stage "done"
