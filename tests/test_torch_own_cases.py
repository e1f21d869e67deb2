"""PyTorch's own test data for our ops, run against symxent.functional on every backend.

Source of the cases (nothing here is hand-written data):

- ``torch.testing._internal.common_methods_invocations.op_db``: the OpInfos of
  ``nn.functional.{cross_entropy, nll_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div}``,
  ``softmax`` and ``log_softmax`` (both variants each: ``""`` and ``"with_dtype"``). Their
  ``sample_inputs(device="cpu", dtype, requires_grad=True)`` over every dtype the OpInfo declares for CPU
  (integer and bool inputs, declared by the ``with_dtype`` variants only, are sampled without
  ``requires_grad``), and their ``error_inputs(device="cpu")`` where the OpInfo defines them.
- torch 2.13's op_db defines no ``error_inputs`` for any of these seven ops, so the error cases also come from
  ``common_modules.module_db``: the ``module_error_inputs`` of ``CrossEntropyLoss`` and ``NLLLoss`` (the only
  error data PyTorch has for these ops), called as the functional form, ``F.<op>(*forward_args, **constructor_kwargs)``.

Each sample is called as ``f(sample.input, *sample.args, **sample.kwargs)`` on torch and on
``symxent.functional.<same name>`` with ``backend=`` one of :data:`BACKENDS`.

Three tests:

- :func:`test_sample`: the output, and the gradient with respect to ``input`` for a random ``grad_output`` of the
  output's shape (torch / cuda: autograd; numpy / c: ``return_grad=True, grad_output=``). Targets, weights and
  ``pos_weight`` are detached here (their gradients are the next test's).
- :func:`test_argument_grad` (every floating tensor argument besides ``input``: ``target``, ``weight``,
  ``pos_weight``): that argument and ``input`` require grad. Where torch raises (forward or backward, e.g. "is
  not differentiable with respect to argument 'weight'"), symxent must raise the same exception type; where torch
  differentiates it, the output and both gradients must match.
- :func:`test_error_input`: torch raises ``error_type`` matching ``error_regex`` (checked first: the mapping to
  the functional form is right); symxent must raise the same type with a message matching the same regex.

Reference and tolerances. The reference is torch on float64 copies of every floating tensor (the same values:
upcasting is exact), rounded once to the dtype torch itself returns; values and gradients are compared with
``torch.testing.assert_close``'s default tolerances for the compared dtype (float64 1e-7/1e-7, float32
1.3e-6/1e-5, float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5). Why float64 and not torch in the sample's dtype: symxent
computes half types in float32 and rounds once, while torch's own float16/bfloat16 result carries its own
roundings, so it is not the better answer; against the float64 value rounded to the half type, a one-ulp
difference (2^-11..2^-10 relative in float16, 2^-8..2^-7 in bfloat16) and float32 accumulation fit the
default tolerances (every case here passes them with a margin of 4x but one, float16 BCE's grad_input). Shapes and dtypes must equal those of torch in the sample's dtype.
The failure messages give torch's own error in the sample's dtype for comparison.

Skips: only through :data:`UNSUPPORTED` (rules on the case: op, backend, dtype, kind). Everything else asserts.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import re
import warnings
import zlib
from typing import Callable

import numpy as np
import pytest
import torch

import symxent.functional as sxf

BACKENDS = ("torch", "numpy", "c", "cuda", "triton")
#: TRITON_INTERPRET is read when the Triton kernels are imported: the triton cases run in the child process of
#: tests/test_triton_interpreter.py that sets it (CPU tensors), or natively on a GPU
TRITON_HERE = os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available()
ARRAY_BACKENDS = ("numpy", "c")

#: op_db (name, variant_test_name) -> symxent.functional function of the same name
OPS = {
    ("nn.functional.cross_entropy", ""): "cross_entropy",
    ("nn.functional.nll_loss", ""): "nll_loss",
    ("nn.functional.binary_cross_entropy", ""): "binary_cross_entropy",
    ("nn.functional.binary_cross_entropy_with_logits", ""): "binary_cross_entropy_with_logits",
    ("nn.functional.kl_div", ""): "kl_div",
    ("softmax", ""): "softmax",
    ("softmax", "with_dtype"): "softmax",
    ("log_softmax", ""): "log_softmax",
    ("log_softmax", "with_dtype"): "log_softmax",
}
#: module_db classes whose module_error_inputs are used (as the functional form) -> symxent function
MODULES = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss"}

#: torch.testing.assert_close's default (rtol, atol) per dtype
TOLERANCES = {
    torch.float64: dict(rtol=1e-7, atol=1e-7),
    torch.float32: dict(rtol=1.3e-6, atol=1e-5),
    torch.float16: dict(rtol=1e-3, atol=1e-5),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1e-5),
}


# --- cases and the one table of unsupported ones ------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # "sample" | "argument_grad" | "error"
    op: str  # op_db "name[.variant]" or "module_db.<Module>"
    backend: str
    dtype: torch.dtype
    index: int
    arg: str | None = None  # argument_grad: the argument that requires grad besides input

    @property
    def id(self):
        parts = [self.op.removeprefix("nn.functional."), self.backend, str(self.dtype).removeprefix("torch."),
                 ("e" if self.kind == "error" else "s") + str(self.index)]
        return "-".join(parts + ([self.arg] if self.arg else []))


@dataclasses.dataclass(frozen=True)
class Rule:
    description: str
    applies: Callable[[Case], bool] = dataclasses.field(compare=False)


#: every skipped case, with why (the first rule that applies wins: what symxent does not support by design
#: first, then what this machine lacks)
UNSUPPORTED = {
    Rule("complex dtypes (softmax/log_softmax with_dtype declare complex32/64/128)",
         lambda c: c.dtype.is_complex):
        "symxent's functions are real-valued: complex input raises TypeError ('expected a floating-point input')",
    Rule("bfloat16 on the numpy / c backends",
         lambda c: c.backend in ARRAY_BACKENDS and c.dtype == torch.bfloat16):
        "NumPy has no bfloat16 dtype: a bfloat16 tensor cannot be passed as an array",
    Rule("argument gradients (target, weight, pos_weight) on the numpy / c backends",
         lambda c: c.backend in ARRAY_BACKENDS and c.kind == "argument_grad"):
        "the array backends return only the gradient with respect to input (return_grad=True)",
    Rule("float64 on the cuda backend (float64 samples; the with_dtype variants, whose samples pass "
         "dtype=torch.float64)",
         lambda c: c.backend == "cuda" and (c.dtype == torch.float64 or c.op.endswith(".with_dtype"))):
        "the generated CUDA kernels take float32 / float16 / bfloat16 (float64 raises TypeError by design)",
    Rule("cuda backend without a CUDA device",
         lambda c: c.backend == "cuda" and not torch.cuda.is_available()):
        "no CUDA device here (torch.cuda.is_available() is False)",
    Rule("triton backend outside Triton's interpreter and without a CUDA device",
         lambda c: c.backend == "triton" and not TRITON_HERE):
        "run by tests/test_triton_interpreter.py in a child process with TRITON_INTERPRET=1 (read at import)",
}


def unsupported(case):
    """The reason ``case`` is skipped, or None."""
    for rule, reason in UNSUPPORTED.items():
        if rule.applies(case):
            return f"{rule.description}: {reason}"
    return None


# --- PyTorch's data, loaded once --------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _op_db():
    """{op key: OpInfo} for :data:`OPS` (op_db is imported once per session: ~3 s)."""
    from torch.testing._internal.common_methods_invocations import op_db

    found = {(op.name, op.variant_test_name): op for op in op_db if (op.name, op.variant_test_name) in OPS}
    missing = set(OPS) - set(found)
    assert not missing, f"op_db has no OpInfo for {sorted(missing)}"
    return found


@functools.lru_cache(maxsize=None)
def _module_db():
    from torch.testing._internal.common_modules import module_db

    return {m.module_cls.__name__: m for m in module_db if m.module_cls.__name__ in MODULES}


def _op_name(key):
    name, variant = key
    return f"{name}.{variant}" if variant else name


def _op_key(op_name):
    name, _, variant = op_name.partition(".with_")
    return (name, "with_" + variant) if variant else (op_name, "")


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _dtypes(op):
    return sorted(op.supported_dtypes("cpu"), key=str)


@functools.lru_cache(maxsize=None)
def _samples(op_name, dtype):
    """The OpInfo's samples for ``dtype``: a tuple of (input, args, kwargs), detached."""
    op = _op_db()[_op_key(op_name)]
    grad = dtype.is_floating_point or dtype.is_complex
    torch.manual_seed(zlib.crc32(f"{op_name}-{dtype}".encode()))  # op_db draws from the global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        return tuple((_detached(s.input), _detached(tuple(s.args)), _detached(dict(s.kwargs)))
                     for s in op.sample_inputs("cpu", dtype, requires_grad=grad))


@functools.lru_cache(maxsize=None)
def _error_inputs(source, dtype):
    """``(function, input, args, kwargs, error_type, error_regex)`` of an op_db OpInfo's error_inputs, or of
    a module_db ModuleInfo's module_error_inputs as the functional form."""
    if source.startswith("module_db."):
        info = _module_db()[source.removeprefix("module_db.")]
        out = []
        for e in info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False, training=False):
            m = e.module_error_input
            fwd, ctor = m.forward_input, m.constructor_input
            assert not ctor.args, "constructor positional arguments are not mapped"
            out.append((MODULES[info.module_cls.__name__], _detached(fwd.args[0]), _detached(tuple(fwd.args[1:])),
                        _detached({**ctor.kwargs, **fwd.kwargs}), e.error_type, e.error_regex))
        return tuple(out)
    op = _op_db()[_op_key(source)]
    if op.error_inputs_func is None:
        return ()
    return tuple((OPS[_op_key(source)], _detached(e.sample_input.input), _detached(tuple(e.sample_input.args)),
                  _detached(dict(e.sample_input.kwargs)), e.error_type, e.error_regex)
                 for e in op.error_inputs("cpu"))


def _argument_names(function):
    """Positional parameter names of symxent.functional.<function> after ``input``."""
    params = list(inspect.signature(getattr(sxf, function)).parameters)
    return params[1:]


def _grad_arguments(function, args, kwargs):
    """Names of the floating tensor arguments besides input (target, weight, pos_weight)."""
    names = _argument_names(function)
    positional = [names[i] for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()]
    return positional + [k for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]


def _device(backend):
    """Where a tensor backend's tensors go: cuda on a GPU (triton: unless interpreted), else the CPU."""
    interpreted = backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"
    return "cuda" if backend in ("cuda", "triton") and not interpreted else "cpu"


def _param(case):
    reason = unsupported(case)
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    if case.backend == "cuda":
        marks.append(pytest.mark.gpu)
    return pytest.param(case, id=case.id, marks=marks)


def _collect():
    samples, argument_grads, errors = [], [], []
    for key, op in _op_db().items():
        name = _op_name(key)
        for dtype in _dtypes(op):
            for i, (_, args, kwargs) in enumerate(_samples(name, dtype)):
                for backend in BACKENDS:
                    samples.append(_param(Case("sample", name, backend, dtype, i)))
                    for arg in _grad_arguments(OPS[key], args, kwargs):
                        argument_grads.append(_param(Case("argument_grad", name, backend, dtype, i, arg)))
            for i, _ in enumerate(_error_inputs(name, dtype) if op.error_inputs_func else ()):
                errors.extend(_param(Case("error", name, b, dtype, i)) for b in BACKENDS)
    for module, info in _module_db().items():
        for dtype in info.dtypes:
            for i, _ in enumerate(_error_inputs(f"module_db.{module}", dtype)):
                errors.extend(_param(Case("error", f"module_db.{module}", b, dtype, i)) for b in BACKENDS)
    return samples, argument_grads, errors


SAMPLE_CASES, ARGUMENT_GRAD_CASES, ERROR_CASES = _collect()


# --- calling torch and symxent the same way ---------------------------------------------------------

def _map_tensors(value, f):
    if isinstance(value, torch.Tensor):
        return f(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, f) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, f) for k, v in value.items()}
    return value


def _float64(t):
    return t.to(torch.float64) if t.is_floating_point() else t


def _numpy_dtype(dtype):
    return torch.empty(0, dtype=dtype).numpy().dtype


def _to_numpy(value):
    """Tensors -> NumPy arrays, torch dtypes (softmax's ``dtype=``) -> NumPy dtypes."""
    if isinstance(value, torch.dtype):
        return _numpy_dtype(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _from_numpy(value):
    return torch.from_numpy(np.array(value))


def _seeded_normal(case_id, shape, dtype):
    g = torch.Generator().manual_seed(zlib.crc32(case_id.encode()))
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _call(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's reduction='mean' warning (both sides warn)
        return fn(*args, **kwargs)


def _grads(out, leaves, grad_output):
    """Gradients of ``out`` for ``grad_output`` w.r.t. ``leaves``; an unused leaf gets zeros."""
    grads = torch.autograd.grad(out, leaves, grad_output, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]


def _check_close(what, actual, expected, native=None):
    """``actual`` against the float64 reference ``expected`` rounded to ``native``'s dtype (torch's own
    result in the sample's dtype, which also fixes the shape and dtype)."""
    native = expected if native is None else native
    assert tuple(actual.shape) == tuple(native.shape), \
        f"{what}: shape {tuple(actual.shape)}, torch gives {tuple(native.shape)}"
    assert actual.dtype == native.dtype, f"{what}: dtype {actual.dtype}, torch gives {native.dtype}"
    ref = expected.to(native.dtype)
    tol = TOLERANCES.get(native.dtype, dict(rtol=0, atol=0))

    def message(m):
        own = (native.detach().cpu().double() - ref.double()).abs().max().item() if native.numel() else 0.0
        return (f"{what} differs from torch (float64 reference rounded to {native.dtype}; torch's own "
                f"{native.dtype} result is off by at most {own:.3g}):\n{m}\nsymxent: {actual}\ntorch:   {ref}")

    torch.testing.assert_close(actual.detach().cpu(), ref, equal_nan=True, check_dtype=True, msg=message, **tol)


def _exception_name(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


# --- the tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", SAMPLE_CASES)
def test_sample(case):
    """Output and input gradient of one OpInfo sample against torch (targets/weights detached)."""
    key = _op_key(case.op)
    torch_fn, ours = _op_db()[key].op, getattr(sxf, OPS[key])
    x, args, kwargs = _detached(_samples(case.op, case.dtype)[case.index])
    floating = x.is_floating_point()

    # torch in the sample's dtype: shape, dtype, whether it raises, its own rounding error
    xn = x.clone().requires_grad_(floating)
    try:
        native = _call(torch_fn, xn, *args, **kwargs)
    except Exception as torch_error:  # symxent must raise the same type
        with pytest.raises(type(torch_error)):
            _run_ours(case, ours, x, args, kwargs, None)
        return
    go = _seeded_normal(case.id, native.shape, native.dtype) if floating else None
    native_grad = _grads(native, [xn], go)[0] if floating else None
    # the reference: torch on float64 copies
    x64 = _float64(x).requires_grad_(floating)
    ref = _call(torch_fn, x64, *_map_tensors(args, _float64), **_map_tensors(kwargs, _float64))
    ref_grad = _grads(ref, [x64], go.to(torch.float64))[0] if floating else None

    out, grad = _run_ours(case, ours, x, args, kwargs, go)
    _check_close(f"{case.op} output ({case.backend})", out, ref, native)
    if floating:
        assert grad is not None, "symxent's output is not differentiable with respect to input"
        _check_close(f"{case.op} grad_input ({case.backend})", grad, ref_grad, native_grad)


def _run_ours(case, ours, x, args, kwargs, go):
    """symxent on ``case.backend``: ``(output, grad_input or None)`` as tensors."""
    backend = case.backend
    if backend in ARRAY_BACKENDS:
        np_args, np_kwargs = _to_numpy(args), _to_numpy(kwargs)
        if go is None:
            return _from_numpy(_call(ours, _to_numpy(x), *np_args, backend=backend, **np_kwargs)), None
        out, grad = _call(ours, _to_numpy(x), *np_args, backend=backend, return_grad=True,
                          grad_output=_to_numpy(go), **np_kwargs)
        return _from_numpy(out), _from_numpy(grad)
    device = _device(backend)
    move = functools.partial(_map_tensors, f=lambda t: t.to(device))
    x = x.to(device).requires_grad_(go is not None)
    out = _call(ours, x, *move(args), backend=backend, **move(kwargs))
    if go is None:
        return out, None
    if not out.requires_grad:
        return out, None
    return out, _grads(out, [x], go.to(device))[0]


@pytest.mark.parametrize("case", ARGUMENT_GRAD_CASES)
def test_argument_grad(case):
    """``input`` and one more floating argument (target, weight or pos_weight) require grad: symxent raises
    what torch raises, or differentiates both as torch does."""
    key = _op_key(case.op)
    torch_fn, ours = _op_db()[key].op, getattr(sxf, OPS[key])
    x, args, kwargs = _detached(_samples(case.op, case.dtype)[case.index])
    names = _argument_names(OPS[key])
    position = names.index(case.arg)
    in_kwargs = case.arg in kwargs

    def prepared(convert):
        """(input, args, kwargs, the extra leaf), converted, with input and the argument requiring grad."""
        xi = convert(x).requires_grad_(True)
        a, k = list(_map_tensors(args, convert)), _map_tensors(kwargs, convert)
        if in_kwargs:
            k[case.arg] = k[case.arg].requires_grad_(True)
            leaf = k[case.arg]
        else:
            a[position] = a[position].requires_grad_(True)
            leaf = a[position]
        return xi, tuple(a), k, leaf

    # torch in the sample's dtype decides: raises (forward or backward) or differentiates
    xi, a, k, leaf = prepared(lambda t: t.clone())
    torch_error, stage, native_grads = None, "forward", None
    try:
        native = _call(torch_fn, xi, *a, **k)
        stage = "backward"
        go = _seeded_normal(case.id, native.shape, native.dtype)
        native_grads = _grads(native, [xi, leaf], go)
    except Exception as e:
        torch_error = e

    device = _device(case.backend)
    xo, ao, ko, leaf_o = prepared(lambda t: t.to(device, copy=True))
    if torch_error is not None:
        try:
            out = _call(ours, xo, *ao, backend=case.backend, **ko)
            _grads(out, [xo, leaf_o], _seeded_normal(case.id, out.shape, out.dtype).to(device))
        except Exception as e:
            assert isinstance(e, type(torch_error)), (
                f"torch raises {_exception_name(torch_error)} ({stage}); symxent raises {_exception_name(e)}")
            return
        pytest.fail(f"torch raises {_exception_name(torch_error)} ({stage}); symxent raises nothing and "
                    f"differentiates {case.arg}")

    x64, a64, k64, leaf64 = prepared(_float64)
    ref = _call(torch_fn, x64, *a64, **k64)
    ref_grads = _grads(ref, [x64, leaf64], go.to(torch.float64))
    try:
        out = _call(ours, xo, *ao, backend=case.backend, **ko)
        grads = _grads(out, [xo, leaf_o], go.to(device))
    except Exception as e:
        pytest.fail(f"torch differentiates {case.arg}; symxent raises {_exception_name(e)}")
    _check_close(f"{case.op} output ({case.backend})", out, ref, native)
    for name, g, g_ref, g_native in zip(("input", case.arg), grads, ref_grads, native_grads):
        _check_close(f"{case.op} grad of {name} ({case.backend})", g, g_ref, g_native)


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_input(case):
    """torch raises error_type matching error_regex; symxent raises the same type, message matching too."""
    function, x, args, kwargs, error_type, error_regex = _detached(_error_inputs(case.op, case.dtype)[case.index])
    torch_fn = getattr(torch.nn.functional, function)
    with pytest.raises(error_type, match=error_regex):  # the data and its mapping to F.<function>
        _call(torch_fn, x, *args, **kwargs)

    ours = getattr(sxf, function)
    if case.backend in ARRAY_BACKENDS:
        call = lambda: _call(ours, _to_numpy(x), *_to_numpy(args), backend=case.backend, **_to_numpy(kwargs))
    else:
        move = functools.partial(_map_tensors, f=lambda t: t.to(_device(case.backend)))
        call = lambda: _call(ours, move(x), *move(args), backend=case.backend, **move(kwargs))
    try:
        call()
    except Exception as e:
        assert isinstance(e, error_type), (
            f"torch raises {error_type.__name__} /{error_regex}/; symxent raises {_exception_name(e)}")
        assert re.search(error_regex, str(e)), (
            f"same type {error_type.__name__}, but the message does not match /{error_regex}/: {str(e)!r}")
        return
    pytest.fail(f"torch raises {error_type.__name__} /{error_regex}/; symxent raises nothing")
