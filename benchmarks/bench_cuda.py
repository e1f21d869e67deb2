"""Mean cross-entropy forward + backward on a GPU: symxent's generated CUDA kernel against torch eager,
torch.compile, Liger-Kernel and a device-to-device copy of the same bytes.

    python benchmarks/bench_cuda.py                 # the table of benchmarks/README.md (H100: ~2 minutes)
    python benchmarks/bench_cuda.py --quick         # small shapes, a smoke run
    python benchmarks/bench_cuda.py --json out.json # also save every number
    python benchmarks/bench_cuda.py --shapes 8192x128256 --dtypes bf16   # one case

What is timed (as in the anchors' protocol): ``loss = f(x, t); loss.backward()`` with ``reduction="mean"``,
``ignore_index=-100`` and every 17th target ignored; CUDA events around each call, a 256 MB write
before each call (untimed) so that no call finds its inputs in L2, the median (and the spread) of
``--repeats`` (20) after ``--warmup`` (5) calls. Effective bandwidth is ``2 * N * V * bytes / time`` (one
read of the logits, one write of the gradient: the least any forward + backward can move); the copy
moves exactly those bytes (``y.copy_(x)``), the practical limit. Extra memory is the peak allocated
during one call minus what was allocated before it (the gradient buffer included).

Targets (issue 5): at (8192, 128256), bf16 and fp32, symxent >= 85% of the copy's bandwidth and >= 1.4x
faster than Liger-Kernel; label smoothing + class weights + z-loss cost <= 5% more; zero extra memory
with ``inplace_backward=True``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys

import torch
import torch.nn.functional as F

SHAPES = [(8192, 32000), (8192, 128256), (4096, 256000)]
QUICK_SHAPES = [(256, 32000), (128, 128256)]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
TARGET_SHAPE = (8192, 128256)
IGNORE_EVERY = 17


# --- the contenders: each is f(x, t, **options) -> loss ------------------------------------------------

def symxent_loss(inplace=False):
    from symxent.runtime import cuda_autograd as cx

    def f(x, t, weight=None, label_smoothing=0.0, lse_square_scale=0.0):
        return cx.cross_entropy(x, t, weight, label_smoothing=label_smoothing, lse_square_scale=lse_square_scale,
                                inplace_backward=inplace)
    return f


def triton_loss(x, t, weight=None, label_smoothing=0.0, lse_square_scale=0.0):
    """symxent's generated Triton kernels (backend="triton")."""
    import symxent.functional as F

    return F.cross_entropy(x, t, weight=weight, label_smoothing=label_smoothing, lse_square_scale=lse_square_scale,
                           backend="triton")


def eager_loss(x, t, weight=None, label_smoothing=0.0, lse_square_scale=0.0):
    """torch's cross_entropy, plus a z-loss term when asked (for timing; its mean is over counted rows)."""
    loss = F.cross_entropy(x, t, weight, label_smoothing=label_smoothing)
    if lse_square_scale:
        counted = (t != -100).to(x.dtype)
        loss = loss + lse_square_scale * (torch.logsumexp(x.float(), 1) ** 2 * counted).sum() / counted.sum()
    return loss


def compiled_loss():
    return torch.compile(eager_loss, dynamic=False)


def liger_loss():
    """Liger-Kernel's cross-entropy, or None when it is not installed."""
    try:
        from liger_kernel.transformers.functional import liger_cross_entropy
    except ImportError:
        try:
            from liger_kernel.transformers import LigerCrossEntropyLoss
        except ImportError:
            return None

        def f(x, t, weight=None, label_smoothing=0.0, lse_square_scale=0.0):
            return LigerCrossEntropyLoss(weight=weight, label_smoothing=label_smoothing,
                                         lse_square_scale=lse_square_scale)(x, t)
        return f

    def f(x, t, weight=None, label_smoothing=0.0, lse_square_scale=0.0):
        return liger_cross_entropy(x, t, weight, label_smoothing=label_smoothing, lse_square_scale=lse_square_scale)
    return f


# --- measuring -------------------------------------------------------------------------------------

#: written between timed calls so that no contender finds its inputs in the 50-60 MB L2 (untimed)
_L2_FLUSH = None


def flush_l2():
    global _L2_FLUSH
    if _L2_FLUSH is None:
        _L2_FLUSH = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    _L2_FLUSH.zero_()


def time_call(fn, warmup, repeats, before=None):
    """(median, min, max) milliseconds of ``fn()`` (CUDA events); ``before()`` and an L2 flush run untimed
    before each call."""
    times = []
    for i in range(warmup + repeats):
        if before is not None:
            before()
        flush_l2()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end))
    return statistics.median(times), min(times), max(times)


def extra_memory(fn, before=None):
    """Peak bytes allocated during one ``fn()`` beyond what was allocated before it."""
    if before is not None:
        before()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def measure(name, loss_fn, base, t, options, warmup, repeats, overwrites_input):
    """One contender on one case: time, bandwidth, extra memory (the logits restored before each
    call when the contender overwrites them; untimed)."""
    x = base.detach().clone().requires_grad_()

    def before():
        x.grad = None
        if overwrites_input:
            with torch.no_grad():
                x.copy_(base)

    def call():
        loss = loss_fn(x, t, **options)
        loss.backward()

    before()
    loss_value = float(loss_fn(x, t, **options).detach().float())  # a first call: compiles / builds, and checks
    ms, fastest, slowest = time_call(call, warmup, repeats, before)
    extra = extra_memory(call, before)
    x.grad = None
    return dict(method=name, ms=ms, min_ms=fastest, max_ms=slowest, extra_bytes=extra, loss=loss_value)


def copy_time(base, warmup, repeats):
    y = torch.empty_like(base)
    ms, fastest, slowest = time_call(lambda: y.copy_(base), warmup, repeats)
    return dict(method="copy (limit)", ms=ms, min_ms=fastest, max_ms=slowest, extra_bytes=0, loss=None)


def run_case(rows, cols, dtype_name, args, options=None, label=""):
    dtype = DTYPES[dtype_name]
    g = torch.Generator(device="cuda").manual_seed(0)
    base = (torch.randn(rows, cols, device="cuda", generator=g) * 2).to(dtype)
    t = torch.randint(0, cols, (rows,), device="cuda", generator=g)
    t[::IGNORE_EVERY] = -100
    options = dict(options or {})
    if options.pop("weighted", False):
        options["weight"] = (torch.rand(cols, device="cuda", generator=g) + 0.5).to(dtype)
    bytes_moved = 2 * rows * cols * base.element_size()
    results = [copy_time(base, args.warmup, args.repeats)]
    contenders = [("symxent", symxent_loss(False), False), ("symxent inplace", symxent_loss(True), True)]
    if importlib.util.find_spec("triton") is not None:
        contenders.append(("symxent triton", triton_loss, False))
    if not args.no_torch:
        contenders += [("torch eager", eager_loss, False), ("torch.compile", compiled_loss(), False)]
    liger = liger_loss()
    if liger is not None:
        contenders.append(("Liger-Kernel", liger, True))
    for name, fn, overwrites in contenders:
        try:
            results.append(measure(name, fn, base, t, options, args.warmup, args.repeats, overwrites))
        except Exception as exc:  # report and go on (e.g. eager refusing bf16 logits with fp32 weights)
            results.append(dict(method=name, ms=None, extra_bytes=None, loss=None, error=f"{type(exc).__name__}: {exc}"))
        torch.cuda.empty_cache()
    for r in results:
        r["tb_s"] = bytes_moved / (r["ms"] * 1e-3) / 1e12 if r.get("ms") else None
    del base, t
    torch.cuda.empty_cache()
    return dict(rows=rows, cols=cols, dtype=dtype_name, label=label, bytes=bytes_moved, results=results,
                liger_installed=liger is not None)


# --- reporting -------------------------------------------------------------------------------------------

def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_case(case):
    head = f"{case['rows']} x {case['cols']}, {case['dtype']}" + (f" ({case['label']})" if case["label"] else "")
    print(f"\n{head}")
    copy_ms = case["results"][0]["ms"]
    print(f"  {'method':<16} {'median ms':>9} {'min-max ms':>15} {'TB/s':>6} {'of copy':>8} {'extra GB':>9}  loss")
    for r in case["results"]:
        share = copy_ms / r["ms"] if r.get("ms") else None
        extra = r["extra_bytes"] / 1e9 if r.get("extra_bytes") is not None else None
        loss = fmt(r.get("loss"), ".5f") if r.get("loss") is not None else ""
        tail = f"  {r['error']}" if r.get("error") else ""
        spread = f"{r['min_ms']:.3f}-{r['max_ms']:.3f}" if r.get("min_ms") is not None else "-"
        print(f"  {r['method']:<16} {fmt(r.get('ms'), '9.3f')} {spread:>15} {fmt(r.get('tb_s'), '6.2f')} "
              f"{fmt(share and 100 * share, '7.1f')}% {fmt(extra, '9.3f')}  {loss}{tail}", flush=True)


def ms_of(case, method):
    return next((r["ms"] for r in case["results"] if r["method"] == method and r.get("ms")), None)


def print_targets(cases, options_case):
    print("\nTargets (issue 5):")
    for case in cases:
        if (case["rows"], case["cols"]) != TARGET_SHAPE or case["label"]:
            continue
        ours, copy, liger = ms_of(case, "symxent"), ms_of(case, "copy (limit)"), ms_of(case, "Liger-Kernel")
        share = copy / ours if ours else None
        print(f"  {case['dtype']}: {fmt(share and 100 * share, '.1f')}% of copy bandwidth (target >= 85%): "
              f"{'met' if share and share >= 0.85 else 'MISSED'}")
        if liger:
            speedup = liger / ours
            print(f"  {case['dtype']}: {speedup:.2f}x Liger-Kernel (target >= 1.4x): {'met' if speedup >= 1.4 else 'MISSED'}")
        else:
            print(f"  {case['dtype']}: Liger-Kernel not installed (pip install liger-kernel) - no speedup measured")
        extra = next((r["extra_bytes"] for r in case["results"] if r["method"] == "symxent inplace"), None)
        print(f"  {case['dtype']}: extra memory with inplace_backward=True: "
              f"{fmt(extra and extra / 1e6, '.1f')} MB (target: 0 beyond per-row scalars)")
    if options_case is not None:
        plain = next(c for c in cases if (c["rows"], c["cols"], c["dtype"]) ==
                     (options_case["rows"], options_case["cols"], options_case["dtype"]) and not c["label"])
        for method in ("symxent", "Liger-Kernel", "torch.compile"):
            a, b = ms_of(plain, method), ms_of(options_case, method)
            if a and b:
                print(f"  label smoothing + weights + z-loss, {method}: {100 * (b / a - 1):+.1f}% "
                      f"{'(target <= 5%)' if method == 'symxent' else ''}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--shapes", nargs="+", metavar="NxV", help="shapes to time (default: the three of the table)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true", help="skip torch eager and torch.compile")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_cuda.py needs a CUDA GPU", file=sys.stderr)
        return 2
    from symxent.runtime.cuda import unavailable_reason
    reason = unavailable_reason()
    if reason:
        print(f"symxent CUDA kernels unavailable: {reason}", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
    cases = []
    for rows, cols in shapes:
        for d in args.dtypes:
            cases.append(run_case(rows, cols, d, args))
            print_case(cases[-1])  # as each case ends: a run cut short still reports what it measured
    options_case = None
    target = TARGET_SHAPE if TARGET_SHAPE in shapes else shapes[-1] if args.quick or args.shapes else TARGET_SHAPE
    if "bf16" in args.dtypes:
        options_case = run_case(*target, "bf16", args, dict(weighted=True, label_smoothing=0.1, lse_square_scale=1e-4),
                                label="label_smoothing=0.1, class weights, lse_square_scale=1e-4")
        print_case(options_case)
        cases.append(options_case)
    print_targets([c for c in cases if c is not options_case], options_case)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, cases=cases), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
