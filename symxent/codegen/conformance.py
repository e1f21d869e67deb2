"""The generated kernels against torch.nn.functional, for ``symxent verify``.

Each check loads a kernel for one backend, runs it at random inputs and at extreme logits
(``+-1e4``) in float32 and float64, and compares the loss and its gradient with PyTorch (the
gradient from autograd). Other checks: every rewrite rule's identity is proved, the vocab-parallel
shard kernels reassemble torch's cross-entropy, and the checked-in sources under ``codegen/`` match
what the generator writes now (no drift).
"""
from __future__ import annotations

from pathlib import Path

import numpy

#: (relative and absolute) tolerances per dtype
TOLERANCE = {numpy.float64: 1e-9, numpy.float32: 2e-5}


def _inputs(rng, dtype, rows=6, classes=5, extreme=True):
    z = rng.normal(size=(rows, classes)) * 3
    target = rng.integers(0, classes, rows)
    if extreme:
        z[0, 1], z[1], target[0] = 1e4, -1e4, 1
        z[1, 2] = 1e4
    return z.astype(dtype), target


def _row_cases(rng, dtype):
    """(name, kernel args, torch reference returning (loss per row, input tensor)) for row kernels."""
    import torch
    import torch.nn.functional as F
    z, target = _inputs(rng, dtype)
    classes = z.shape[1]
    weight = rng.uniform(0.5, 2, classes).astype(dtype)
    y = rng.dirichlet(numpy.ones(classes), z.shape[0]).astype(dtype)
    logp = torch.log_softmax(torch.tensor(z), 1).numpy()
    t = torch.tensor
    cases = []
    for eps, zs in ((0.0, 0.0), (0.1, 0.0), (0.0, 1e-3), (0.1, 1e-3)):  # the z-loss: + zs * lse**2 per row
        cases.append(("cross_entropy", (z, target, weight, eps, zs),
                      lambda x, eps=eps, zs=zs: F.cross_entropy(x, t(target), weight=t(weight), reduction="none",
                                                                label_smoothing=eps) + zs * torch.logsumexp(x, 1) ** 2,
                      z))
        cases.append(("cross_entropy_prob", (z, y, weight, eps, zs),
                      lambda x, eps=eps, zs=zs: F.cross_entropy(x, t(y), weight=t(weight), reduction="none",
                                                                label_smoothing=eps) + zs * torch.logsumexp(x, 1) ** 2,
                      z))
        for name, wrt in (("cross_entropy_prob_target", y), ("cross_entropy_prob_weight", weight)):  # by y, by w
            cases.append((name, (z, y, weight, eps),
                          lambda v, eps=eps, name=name: F.cross_entropy(
                              t(z), v if name.endswith("target") else t(y),
                              weight=v if name.endswith("weight") else t(weight), reduction="none",
                              label_smoothing=eps), wrt))
    for eps, zs, cap in ((0.0, 0.0, 2.5), (0.1, 1e-3, 30.0)):  # the logits soft-capped: cap * tanh(z / cap)
        def capped(x, eps=eps, zs=zs, cap=cap):
            c = cap * torch.tanh(x / cap)
            return F.cross_entropy(c, t(target), weight=t(weight), reduction="none",
                                   label_smoothing=eps) + zs * torch.logsumexp(c, 1) ** 2
        cases.append(("cross_entropy_softcap", (z, target, weight, eps, zs, cap), capped, z))
    cases.append(("nll", (logp, target, weight),
                  lambda x: F.nll_loss(x, t(target), weight=t(weight), reduction="none"), logp))
    return cases


def _element_cases(rng, dtype):
    import torch
    import torch.nn.functional as F
    size = 9
    x = (rng.normal(size=size) * 5).astype(dtype)
    x[:3] = (1e4, -1e4, 0.0)
    t_ = rng.uniform(size=size).astype(dtype)
    pw = rng.uniform(0.5, 3, size).astype(dtype)
    w = rng.uniform(0.5, 2, size).astype(dtype)
    p = rng.uniform(0.01, 0.99, size).astype(dtype)
    logq = numpy.log(rng.dirichlet(numpy.ones(size))).astype(dtype)
    target = rng.dirichlet(numpy.ones(size)).astype(dtype)
    target[0] = 0
    t = torch.tensor
    return [
        ("bce_with_logits", (x, t_, pw, w),
         lambda v: F.binary_cross_entropy_with_logits(v, t(t_), weight=t(w), pos_weight=t(pw), reduction="none"), x),
        ("bce", (p, t_, w), lambda v: F.binary_cross_entropy(v, t(t_), weight=t(w), reduction="none"), p),
        ("kl_div", (logq, target, False), lambda v: F.kl_div(v, t(target), reduction="none"), logq),
        ("kl_div", (logq, numpy.log(target + 1e-3).astype(dtype), True),
         lambda v: F.kl_div(v, t(numpy.log(target + 1e-3).astype(dtype)), reduction="none", log_target=True), logq),
        # the gradients by the target (the reference differentiated by its target)
        ("bce_with_logits_target", (x, t_, pw, w),
         lambda v: F.binary_cross_entropy_with_logits(t(x), v, weight=t(w), pos_weight=t(pw), reduction="none"), t_),
        ("bce_target", (p, t_, w), lambda v: F.binary_cross_entropy(t(p), v, weight=t(w), reduction="none"), t_),
        ("kl_div_target", (logq, target, False), lambda v: F.kl_div(t(logq), v, reduction="none"), target),
        ("kl_div_target", (logq, numpy.log(target + 1e-3).astype(dtype), True),
         lambda v: F.kl_div(t(logq), v, reduction="none", log_target=True), numpy.log(target + 1e-3).astype(dtype)),
    ]


def _as_numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else numpy.asarray(value)


def _convert(args, backend):
    if backend not in ("torch", "triton"):  # the tensor backends
        return args
    import torch
    return tuple(torch.tensor(a) if isinstance(a, numpy.ndarray) else a for a in args)


def _compare(got, want, dtype) -> float | None:
    """The largest error if ``got`` is not close to ``want``, else None."""
    got, want = _as_numpy(got), _as_numpy(want)
    tol = TOLERANCE[dtype]
    if got.shape != want.shape:
        return float("inf")
    if numpy.allclose(got, want, rtol=tol, atol=tol, equal_nan=True):
        return None
    return float(numpy.nanmax(numpy.abs(got - want)))


def check_backend(name: str, backend: str, seed: int = 0) -> tuple:
    """``(ok, detail)``: kernel ``name`` on ``backend`` against torch in float32 and float64."""
    import torch
    from .driver import load_kernel
    from .loss import LOSSES
    from .roles import Kind
    kernel = load_kernel(name, backend)
    failures, compared = [], 0
    for dtype in (numpy.float64, numpy.float32):
        rng = numpy.random.default_rng(seed)
        if name in ("softmax", "log_softmax"):
            z, _ = _inputs(rng, dtype)
            grad_output = rng.normal(size=z.shape).astype(dtype)
            x = torch.tensor(z, requires_grad=True)
            out = getattr(torch, name)(x, 1)
            out.backward(torch.tensor(grad_output))
            got = kernel(*_convert((z,), backend))
            back = kernel.backward(*_convert((_as_numpy(got), grad_output), backend))
            for label, a, b in (("out", got, out), ("backward", back, x.grad)):
                compared += 1
                error = _compare(a, b, dtype)
                if error is not None:
                    failures.append(f"{dtype.__name__} {label}: max error {error:.3g}")
            continue
        cases = _row_cases(rng, dtype) + _element_cases(rng, dtype)
        for case_name, args, reference, wrt in cases:
            if case_name != name:
                continue
            x = torch.tensor(wrt, requires_grad=True)
            want = reference(x)
            want.sum().backward()
            if LOSSES[name].kind is Kind.ROW_GRADIENT:  # the gradient alone (by a class vector: summed over rows)
                grad = kernel(*_convert(args, backend))
                pairs = [("grad", grad if x.dim() == 2 else _as_numpy(grad).sum(0), x.grad)]
                lse = ()
            else:
                loss, grad, *lse = kernel(*_convert(args, backend), True)  # the cross-entropies also return lse
                pairs = [("loss", loss, want), ("grad", grad, x.grad)]
            if lse:
                pairs.append(("lse", lse[0], torch.logsumexp(x.detach(), 1)))
            for label, a, b in pairs:
                compared += 1
                error = _compare(a, b, dtype)
                if error is not None:
                    failures.append(f"{dtype.__name__} {label} {args[-1]!r}: max error {error:.3g}")
    if failures:
        return False, "; ".join(failures[:3])
    if not compared:
        return False, f"no reference case for {name!r} in symxent.codegen.conformance: nothing was compared"
    return True, f"{compared} comparisons with torch (float32, float64, logits up to 1e4) agree"


#: class counts of the shards in :func:`check_vocab_shards` (one empty shard)
SHARD_SIZES = (6, 0, 5)


def check_vocab_shards(backend: str, seed: int = 0, eps: float = 0.1) -> tuple:
    """``(ok, detail)``: ``vocab_shard_forward`` / ``vocab_shard_backward`` on ``backend``, run on each shard of
    logits split as :data:`SHARD_SIZES`, with the shards' partial sums added as the SUM all-reduce would,
    against ``F.cross_entropy`` of the whole logits (weights, label smoothing, an ignored row) and its
    autograd gradient, in float32 and float64."""
    import torch
    import torch.nn.functional as F
    from .driver import load_kernel
    forward, backward = load_kernel("vocab_shard_forward", backend), load_kernel("vocab_shard_backward", backend)
    failures, compared = [], 0
    for dtype in (numpy.float64, numpy.float32):
        rng = numpy.random.default_rng(seed)
        z, target = _inputs(rng, dtype, classes=sum(SHARD_SIZES))
        classes = z.shape[1]
        target[-1] = -100  # ignored: no shard owns it
        weight = rng.uniform(0.5, 2, classes).astype(dtype)
        g = rng.uniform(0.5, 2, z.shape[0]).astype(dtype)  # upstream gradient per row
        row_max = z.max(axis=1)
        offsets = numpy.cumsum((0,) + SHARD_SIZES)
        shards = [(z[:, lo:hi], weight[lo:hi], numpy.where((target >= lo) & (target < hi), target - lo, -1))
                  for lo, hi in zip(offsets[:-1], offsets[1:])]
        partials = [tuple(_as_numpy(part) for part in forward(*_convert((zs, row_max, ts, ws), backend), True))
                    for zs, ws, ts in shards]
        sum_exp, target_logit, target_weight, smoothing = (sum(column) for column in zip(*partials))
        log_s = numpy.log(sum_exp)
        loss = (1 - eps) * target_weight * (log_s - target_logit) + eps / classes * (log_s * weight.sum() - smoothing)
        ignored = target == -100
        x = torch.tensor(z, requires_grad=True)
        want = F.cross_entropy(x, torch.tensor(target), weight=torch.tensor(weight), reduction="none",
                               label_smoothing=eps)
        (want * torch.tensor(g)).sum().backward()
        a = numpy.where(ignored, 0, g * (1 - eps) * target_weight).astype(dtype)
        b = numpy.where(ignored, 0, g * eps / classes).astype(dtype)
        lse = (row_max + log_s).astype(dtype)
        grad = numpy.concatenate([_as_numpy(backward(*_convert((zs, lse, ts, ws, a, b, float(weight.sum()), eps > 0),
                                                               backend))) for zs, ws, ts in shards], axis=1)
        for label, got, expected in (("loss", numpy.where(ignored, 0, loss), want), ("grad", grad, x.grad)):
            compared += 1
            error = _compare(got.astype(dtype), expected, dtype)
            if error is not None:
                failures.append(f"{dtype.__name__} {label}: max error {error:.3g}")
    if failures:
        return False, "; ".join(failures[:3])
    return True, (f"{compared} comparisons with F.cross_entropy of the joined shards {SHARD_SIZES} and autograd agree "
                  f"(float32, float64, label_smoothing={eps}, class weights, an ignored row, logits up to 1e4)")


def check_rules() -> tuple:
    from .rewrites import RULES, identity_verdict
    bad = {name: identity_verdict(rule.identity) for name, rule in RULES.items()
           if identity_verdict(rule.identity) != "proved"}
    if bad:
        return False, f"unproved rewrite identities: {bad}"
    return True, f"{len(RULES)} rewrite rules, each identity proved: {', '.join(sorted(RULES))}"


def codegen_root() -> Path:
    import symxent_codegen
    return Path(symxent_codegen.__file__).parent


def check_drift() -> tuple:
    from .driver import write_all
    drifted = write_all(codegen_root(), check=True)
    if drifted:
        return False, f"{len(drifted)} generated files differ from the generator: {[str(p) for p in drifted[:4]]}"
    return True, "every checked-in file under codegen/ is what the generator writes"


def check_user_loss(name: str, backend: str, seed: int = 0) -> tuple:
    """A user loss from its formula, generated and run on ``backend``, against torch autograd."""
    import torch
    from .driver import compile_loss
    from .loss import Loss
    from .user_losses import USER_LOSSES
    formula, params, reference = USER_LOSSES[name]
    kernel = compile_loss(Loss.from_formula(formula, name=name), backend)
    failures = 0
    for dtype in (numpy.float64, numpy.float32):
        z, target = _inputs(numpy.random.default_rng(seed), dtype)
        x = torch.tensor(z, requires_grad=True)
        want = reference(torch, x, torch.tensor(target), params)
        want.sum().backward()
        loss, grad = kernel(*_convert((z, target), backend), params, True)
        failures += sum(_compare(a, b, dtype) is not None for a, b in ((loss, want), (grad, x.grad)))
    if failures:
        return False, f"{failures} of 4 comparisons with torch autograd differ"
    return True, f"{formula} with {params}: loss and gradient match torch autograd (float32, float64)"


#: the code that runs the triton kernels' checks in a child process (TRITON_INTERPRET is read at import)
_TRITON_CHILD = """
import json, os, sys
assert os.environ.get("TRITON_INTERPRET") == "1"
from symxent.codegen.conformance import check_backend, check_user_loss
results = {}
for name in sys.argv[1:]:
    user = name.startswith("user:")
    try:
        results[name] = check_user_loss(name[5:], "triton") if user else check_backend(name, "triton")
    except Exception as error:  # reported, not hidden
        results[name] = (False, f"{type(error).__name__}: {error}")
print("RESULTS " + json.dumps(results))
"""


def run_under_interpreter(argv, timeout: float = 600):
    """``python *argv`` in a child process with ``TRITON_INTERPRET=1`` (read when the Triton kernels are imported, so
    never toggled in a running process); the ``subprocess.CompletedProcess``, output captured as text."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)


def triton_interpreter_results(names=None, timeout: float = 600) -> dict:
    """``{kernel: (ok, detail)}``: :func:`check_backend` of each triton kernel (default: all, and the user losses of
    :mod:`.user_losses` as ``user:NAME``, :func:`check_user_loss`) run by Triton's interpreter on CPU tensors, in a
    child process that sets ``TRITON_INTERPRET=1`` before importing anything."""
    import json
    from .driver import kernels_for
    from .user_losses import USER_LOSSES
    names = names or kernels_for("triton") + [f"user:{name}" for name in USER_LOSSES]
    done = run_under_interpreter(["-c", _TRITON_CHILD, *names], timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode or not lines:
        raise RuntimeError(f"the triton interpreter's child process failed: {done.stderr[-2000:]}")
    return {name: tuple(result) for name, result in json.loads(lines[-1].removeprefix("RESULTS ")).items()}


def check_triton_interpreter() -> tuple:
    """``(ok, detail)`` of every triton kernel under Triton's interpreter (None: triton is not installed)."""
    import importlib.util
    if importlib.util.find_spec("triton") is None:
        return None, "the triton package is not installed (pip install triton; Linux)"
    results = triton_interpreter_results()
    failed = {name: detail for name, (ok, detail) in results.items() if not ok}
    if failed:
        return False, "; ".join(f"{name}: {detail}" for name, detail in sorted(failed.items()))[:600]
    return True, (f"{len(results)} kernels (user losses included) agree with torch under TRITON_INTERPRET=1 "
                  f"(float32, float64, logits 1e4)")


def verify_checks() -> list:
    """Checks for ``symxent verify``: proved rules, no drift, every kernel on every backend vs torch (the triton
    kernels in one child process, under Triton's interpreter)."""
    from ..verify import Check
    from .loss import LOSSES
    BACKENDS = ("numpy", "torch", "c")  # in this process
    checks = [Check("codegen", "rewrite rules proved", check_rules),
              Check("codegen", "generated files up to date", check_drift)]
    for name in sorted(LOSSES):
        for backend in BACKENDS:
            checks.append(Check("codegen", f"{name} [{backend}] vs torch",
                                lambda name=name, backend=backend: check_backend(name, backend)))
    for backend in BACKENDS:
        for eps in (0.0, 0.1):
            checks.append(Check("codegen", f"vocab-parallel shard kernels [{backend}] label_smoothing={eps} vs torch",
                                lambda backend=backend, eps=eps: check_vocab_shards(backend, eps=eps)))
    from .user_losses import USER_LOSSES
    for name in USER_LOSSES:
        for backend in BACKENDS:
            checks.append(Check("codegen", f"user loss {name} [{backend}] vs torch autograd",
                                lambda name=name, backend=backend: check_user_loss(name, backend)))
    checks.append(Check("codegen", "every kernel [triton] under Triton's interpreter vs torch", check_triton_interpreter))
    return checks
