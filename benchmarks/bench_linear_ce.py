"""Fused linear + cross-entropy, forward + backward, every contender in the same run (each in a fresh process).

    python benchmarks/bench_linear_ce.py [--repeat 3] [--large] [--only fp32,bf16,options]
    python benchmarks/bench_linear_ce.py --device cuda [--repeat 10] [--only bf16,options]   # on a GPU

Contenders, on CPU tensors: torch's reference path ``F.cross_entropy(F.linear(h, W), t)`` (the anchor),
torch's chunked ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())`` (torch >= 2.13; it has no
label smoothing, z-loss or soft-capping: "n/a" with options), symxent unfused (``symxent.functional.cross_entropy``
of ``h @ W.T``), and symxent's ``linear_cross_entropy`` with the C row kernel (the CPU default) and with the torch
row kernel. "options": label smoothing 0.1 + z-loss 1e-4 + softcap 30 (written in torch for the unfused
contenders). Time: median of ``--repeat`` calls after one warm-up call of the same shape. Memory: peak RSS
growth (``ru_maxrss`` after minus before) of the first forward + backward in a fresh process, inputs allocated
before; the unavoidable part is the two gradients (h and W) and, for the fused path, one chunk's buffers.

``--device cuda`` (issue 13's GPU table): (8192, 4096, 128256) bfloat16 (``--only bf16,options``), the same torch
contenders, symxent's ``linear_cross_entropy`` with the CUDA and the Triton row kernels, and Liger-Kernel's
``LigerFusedLinearCrossEntropyLoss`` when it is installed (it takes every option). Time: CUDA-synchronised
wall time, median of ``--repeat``; memory: ``torch.cuda.max_memory_allocated()`` during the first call minus what
was allocated before it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CONTENDERS = ("reference", "torch_chunked", "symxent_unfused", "symxent_fused_c", "symxent_fused_torch")
GPU_CONTENDERS = ("reference", "torch_chunked", "symxent_unfused", "symxent_fused_cuda", "symxent_fused_triton",
                  "liger")
OPTIONS = dict(label_smoothing=0.1, lse_square_scale=1e-4, softcap=30.0)


def _child(contender, rows, features, classes, dtype_name, with_options, repeat, device="cpu"):
    import resource
    import time

    import torch
    import torch.nn.functional as F

    import symxent.functional as sf

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    h = torch.randn(rows, features, device=device).to(dtype).requires_grad_()
    W = torch.randn(classes, features, device=device).mul_(0.02).to(dtype).requires_grad_()
    t = torch.randint(0, classes, (rows,), device=device)
    t[::17] = -100
    gpu = device != "cpu"
    liger = None
    if contender == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
        liger = LigerFusedLinearCrossEntropyLoss(**(OPTIONS if with_options else {}))

    def torch_options(z, loss_of):
        if not with_options:
            return loss_of(z, 0.0)
        z = OPTIONS["softcap"] * torch.tanh(z / OPTIONS["softcap"])
        keep = t != -100
        lse = torch.logsumexp(z.float(), dim=-1)
        return loss_of(z, OPTIONS["label_smoothing"]) + OPTIONS["lse_square_scale"] * (lse[keep] ** 2).mean()

    def run():
        if contender == "reference":
            loss = torch_options(F.linear(h, W), lambda z, eps: F.cross_entropy(z, t, label_smoothing=eps))
        elif contender == "torch_chunked":
            loss = F.linear_cross_entropy(h, W, t, options=torch.nn.LinearCrossEntropyOptions())
        elif contender == "symxent_unfused":
            loss = torch_options(h @ W.T, lambda z, eps: sf.cross_entropy(z, t, label_smoothing=eps))
        elif contender == "liger":
            loss = liger(W, h, t)
        else:
            backend = contender.rsplit("_", 1)[1]
            loss = sf.linear_cross_entropy(h, W, t, backend=backend, **(OPTIONS if with_options else {}))
        loss.backward()
        h.grad = W.grad = None
        return float(loss)

    def clock():
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter()

    if contender.startswith("symxent_fused"):  # build / load the kernels on a tiny problem first (not measured)
        sf.linear_cross_entropy(h[:2].detach(), W[:8].detach(), t[:2].clamp(0, 7), backend=contender.rsplit("_", 1)[1])
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB
    start = clock()
    value = run()
    first = clock() - start
    if gpu:
        growth = torch.cuda.max_memory_allocated() / 2**20 - before
    else:
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    times = []
    for _ in range(repeat):
        start = clock()
        run()
        times.append(clock() - start)
    return dict(contender=contender, loss=value, first=first, times=times, growth_mb=growth)


def measure(contender, rows, features, classes, dtype, with_options, repeat, device="cpu"):
    """One contender in a fresh process: a dict, or None where it does not apply."""
    if contender == "torch_chunked":
        import torch.nn.functional as F
        if with_options or not hasattr(F, "linear_cross_entropy"):
            return None
    if contender == "liger":
        import importlib.util
        if importlib.util.find_spec("liger_kernel") is None:
            return None
    command = [sys.executable, __file__, "--child", json.dumps([contender, rows, features, classes, dtype,
                                                                 with_options, repeat, device])]
    out = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if out.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows, features, classes, dtype, with_options, repeat, device="cpu"):
    from symxent.functional.linear import automatic_chunk_rows

    element = 2 if dtype in ("bfloat16", "float16") else 4
    unavoidable = (rows * features + classes * features) * element / 2**20
    chunk = automatic_chunk_rows(rows, classes, features)
    chunk_mb = chunk * classes * 4 * (3 if with_options and device == "cpu" else 2) / 2**20  # GPU: capped in-kernel
    title = f"({rows}, {features}, {classes}) {dtype}{' + options' if with_options else ''}"
    print(f"\n### {title}: unavoidable gradients {unavoidable:.0f} MB, one chunk ({chunk} rows) {chunk_mb:.0f} MB\n")
    print("| contender | median s | spread | vs reference | peak growth MB | / (gradients + chunk) | loss |")
    print("|---|---|---|---|---|---|---|")
    contenders = CONTENDERS if device == "cpu" else GPU_CONTENDERS
    results = {c: measure(c, rows, features, classes, dtype, with_options, repeat, device) for c in contenders}
    anchor = statistics.median(results["reference"]["times"])
    for contender, result in results.items():
        if result is None:
            print(f"| {contender} | n/a | | | | | |")
            continue
        median = statistics.median(result["times"])
        spread = f"{min(result['times']):.4f}-{max(result['times']):.4f}" if device != "cpu" else \
            f"{min(result['times']):.2f}-{max(result['times']):.2f}"
        bound = result["growth_mb"] / (unavoidable + chunk_mb)
        shown = f"{median:.4f}" if device != "cpu" else f"{median:.2f}"
        print(f"| {contender} | {shown} | {spread} | {median / anchor:.2f}x | {result['growth_mb']:.0f} | "
              f"{bound:.2f} | {result['loss']:.6f} |")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also (8192, 2048, 50257) fp32 (minutes per contender)")
    parser.add_argument("--only", default="fp32,bf16,options")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*json.loads(args.child))))
        return
    import torch
    wanted = args.only.split(",")
    if args.device == "cuda":  # issue 13's GPU shape
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
        if "bf16" in wanted:
            table(8192, 4096, 128256, "bfloat16", False, args.repeat, "cuda")
        if "options" in wanted:
            table(8192, 4096, 128256, "bfloat16", True, args.repeat, "cuda")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    if "fp32" in wanted:
        table(4096, 1024, 32000, "float32", False, args.repeat)
    if "options" in wanted:
        table(4096, 1024, 32000, "float32", True, args.repeat)
    if "bf16" in wanted:
        table(4096, 1024, 32000, "bfloat16", False, args.repeat)
    if args.large:
        table(8192, 2048, 50257, "float32", False, 1)


if __name__ == "__main__":
    main()
