"""CPU benchmark: mean cross-entropy loss + gradient w.r.t. the logits, float32, on 2 CPU cores.

    python benchmarks/bench_cpu.py [--repeats 7] [--shapes 4096x32000,65536x1000]

Compares, in one run and interleaved (each round times every candidate once; the median is reported):

- symxent ``backend="c"`` (``cross_entropy(x, t, backend="c", return_grad=True)``) against torch's CPU
  ``F.cross_entropy`` forward + ``backward()`` (2 threads). Target: ratio torch / C >= 1.0.
- symxent ``backend="numpy"`` against the obvious hand-written stable NumPy version (max shift, exp, sum,
  log, gather; gradient ``softmax - onehot`` divided by N). Target: ratio numpy backend / hand-written <= 1.2.

Every candidate's loss and gradient are checked against torch's before timing.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")  # before numpy/torch load their thread pools
os.environ.setdefault("SYMXENT_NUM_THREADS", "2")  # the C backend's row-splitting threads

import argparse
import statistics
import time

import numpy as np

THREADS = 2


def pin_to_cores(count=THREADS):
    """Run on at most ``count`` cores (the benchmark's stated setting)."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:count]
        os.sched_setaffinity(0, cores)
        return len(cores)
    return None


def handwritten_numpy(x, t):
    """The obvious stable NumPy cross-entropy (mean) with its gradient."""
    rows = np.arange(x.shape[0])
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[rows, t])
    grad = e
    grad /= s
    grad[rows, t] -= 1
    grad /= x.shape[0]
    return loss, grad


def candidates(x, t):
    import torch
    import torch.nn.functional as F

    import symxent.functional as sxf

    xt, tt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(t)

    def torch_fwd_bwd():
        xt.grad = None
        loss = F.cross_entropy(xt, tt)
        loss.backward()
        return loss.item(), xt.grad.numpy()

    return {
        "torch": torch_fwd_bwd,
        "c": lambda: sxf.cross_entropy(x, t, backend="c", return_grad=True),
        "numpy": lambda: sxf.cross_entropy(x, t, backend="numpy", return_grad=True),
        "handwritten": lambda: handwritten_numpy(x, t),
    }


def check(results, reference):
    loss_ref, grad_ref = reference
    for name, (loss, grad) in results.items():
        assert abs(float(loss) - loss_ref) <= 1e-5 * abs(loss_ref), (name, float(loss), loss_ref)
        err = float(np.max(np.abs(grad - grad_ref)))
        assert err <= 1e-6 * float(np.max(np.abs(grad_ref))) + 1e-9, (name, err)


def bench_shape(rows, classes, repeats, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, classes), dtype=np.float32) * 2).astype(np.float32)
    t = rng.integers(0, classes, rows, dtype=np.int64)
    fns = candidates(x, t)
    first = {name: fn() for name, fn in fns.items()}  # warm-up (compiles/loads kernels) and correctness
    check({k: v for k, v in first.items() if k != "torch"}, first["torch"])
    del first
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            del out
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--shapes", default="4096x32000,65536x1000")
    args = parser.parse_args(argv)
    cores = pin_to_cores()
    import torch

    torch.set_num_threads(THREADS)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    print(f"cross-entropy loss (mean) + gradient, float32; cores: {cores}, torch threads: "
          f"{torch.get_num_threads()}, symxent c threads: {os.environ['SYMXENT_NUM_THREADS']}; "
          f"torch {torch.__version__}, numpy {np.__version__}; median of {args.repeats} interleaved runs\n")
    header = (f"| {'N x C':>13} | {'torch':>9} | {'symxent c':>9} | {'torch/c':>7} | {'hand numpy':>10} "
              f"| {'symxent numpy':>13} | {'numpy/hand':>10} |")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for rows, classes in shapes:
        med = bench_shape(rows, classes, args.repeats)
        print(f"| {f'{rows} x {classes}':>13} | {med['torch'] * 1e3:7.1f}ms | {med['c'] * 1e3:7.1f}ms "
              f"| {med['torch'] / med['c']:6.2f}x | {med['handwritten'] * 1e3:8.1f}ms "
              f"| {med['numpy'] * 1e3:11.1f}ms | {med['numpy'] / med['handwritten']:9.2f}x |", flush=True)
    print("\ntargets: torch/c >= 1.0x (C at least as fast as torch); numpy/hand <= 1.2x")


if __name__ == "__main__":
    main()
