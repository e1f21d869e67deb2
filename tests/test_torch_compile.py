"""torch.compile(fullgraph=True) of symxent.functional's seven functions and symxent.nn's seven modules.

For every tensor backend (``"torch"``; ``"cuda"`` on a GPU) and both compilers (``aot_eager``: dynamo + AOTAutograd
without code generation; ``inductor``: generated C++ on CPU), each function and each module is compiled with
``fullgraph=True`` (a graph break fails) and run in training: forward and backward. The result and the input's
gradient must equal eager ``torch.nn.functional`` / ``torch.nn``; the compiled graph is exactly one and calls the
``symxent::`` custom ops (so the generated kernels are traced, not bypassed). ``torch._dynamo.reset()`` before
each test: every test compiles from scratch, none sees another's cache.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf
import symxent.nn as N
from symxent.runtime.cuda import unavailable_reason

CUDA_REASON = unavailable_reason()
BACKENDS = [
    pytest.param("torch", id="torch"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(CUDA_REASON is not None, reason=f"backend='cuda' needs a CUDA GPU: {CUDA_REASON}")]),
]
COMPILERS = ["aot_eager", "inductor"]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _inputs(device):
    """Shared float32 data: logits (6, 5), indices, probabilities, values in (0, 1), class weights."""
    x = torch.randn(6, 5, generator=_gen(0)) * 2
    return dict(
        x=x.to(device), t=torch.randint(0, 5, (6,), generator=_gen(1)).to(device),
        p=torch.softmax(torch.randn(6, 5, generator=_gen(2)), 1).to(device),
        u=(torch.rand(6, 5, generator=_gen(3)) * 0.9 + 0.05).to(device),
        w=(torch.rand(5, generator=_gen(4)) + 0.5).to(device),
        logp=torch.log_softmax(x, 1).to(device),
    )


#: name -> (functional call (module, data, input) for torch.nn.functional / symxent.functional,
#:          (module class name, constructor kwargs from data), forward args after the input, input key)
CASES = {
    "cross_entropy": (lambda m, d, x: m.cross_entropy(x, d["t"], weight=d["w"], ignore_index=2, label_smoothing=0.1),
                      ("CrossEntropyLoss", lambda d: dict(weight=d["w"], ignore_index=2, label_smoothing=0.1)),
                      ("t",), "x"),
    "cross_entropy-prob": (lambda m, d, x: m.cross_entropy(x, d["p"], reduction="sum"),
                           ("CrossEntropyLoss", lambda d: dict(reduction="sum")), ("p",), "x"),
    "nll_loss": (lambda m, d, x: m.nll_loss(x, d["t"], weight=d["w"], reduction="none"),
                 ("NLLLoss", lambda d: dict(weight=d["w"], reduction="none")), ("t",), "logp"),
    "softmax": (lambda m, d, x: m.softmax(x, 1), ("Softmax", lambda d: dict(dim=1)), (), "x"),
    "log_softmax": (lambda m, d, x: m.log_softmax(x, 0), ("LogSoftmax", lambda d: dict(dim=0)), (), "x"),
    "binary_cross_entropy": (lambda m, d, x: m.binary_cross_entropy(x, d["p"], weight=d["w"]),
                             ("BCELoss", lambda d: dict(weight=d["w"])), ("p",), "u"),
    "binary_cross_entropy_with_logits": (
        lambda m, d, x: m.binary_cross_entropy_with_logits(x, d["u"], pos_weight=d["w"], reduction="none"),
        ("BCEWithLogitsLoss", lambda d: dict(pos_weight=d["w"], reduction="none")), ("u",), "x"),
    "kl_div": (lambda m, d, x: m.kl_div(x, d["p"], reduction="batchmean"),
               ("KLDivLoss", lambda d: dict(reduction="batchmean")), ("p",), "logp"),
}


class _Backend:
    """symxent.functional with ``backend=`` given to every call."""

    def __init__(self, module, backend):
        self.module, self.backend = module, backend

    def __getattr__(self, name):
        function = getattr(self.module, name)
        return lambda *args, **kwargs: function(*args, **kwargs, backend=self.backend)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def recording(compiler, graphs):
    """A torch.compile backend: records each dynamo graph, then compiles it with ``compiler``."""
    from torch._dynamo.backends.registry import lookup_backend

    inner = lookup_backend(compiler)

    def backend(gm, example_inputs):
        graphs.append(gm)
        return inner(gm, example_inputs)

    return backend


def run_training(function, x, upstream_seed=5):
    """(output, d output / d x for a random upstream gradient) of ``function(x)``."""
    x = x.detach().clone().requires_grad_()
    out = function(x)
    g = torch.randn(out.shape, generator=_gen(upstream_seed)).to(out.device)
    (grad,) = torch.autograd.grad(out, x, g)
    return out, grad


def check_compiled(ours, reference, x, compiler):
    graphs = []
    compiled = torch.compile(ours, fullgraph=True, backend=recording(compiler, graphs))
    out, grad = run_training(compiled, x)
    want, want_grad = run_training(reference, x)
    assert len(graphs) == 1, f"{len(graphs)} graphs"
    assert "symxent" in str(graphs[0].graph), "the compiled graph does not call the symxent custom ops"
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(grad, want_grad)


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_function_compiles_fullgraph(name, backend, compiler):
    call, _, _, key = CASES[name]
    data = _inputs("cuda" if backend == "cuda" else "cpu")
    ours = _Backend(sxf, backend)
    check_compiled(lambda x: call(ours, data, x), lambda x: call(F, data, x), data[key], compiler)


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_module_compiles_fullgraph(name, backend, compiler):
    _, (module_name, kwargs), rest, key = CASES[name]
    data = _inputs("cuda" if backend == "cuda" else "cpu")
    ours = getattr(N, module_name)(**kwargs(data), backend=backend).train()
    theirs = getattr(torch.nn, module_name)(**kwargs(data)).train()
    others = [data[k] for k in rest]
    check_compiled(lambda x: ours(x, *others), lambda x: theirs(x, *others), data[key], compiler)


@pytest.mark.parametrize("compiler", COMPILERS)
def test_compiled_under_autocast(compiler):
    """Autocast inside the compiled region: the policy's cast (bfloat16 logits -> float32 loss) is traced."""
    data = _inputs("cpu")
    x = data["x"].to(torch.bfloat16)

    def loss(module):
        def f(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return module.cross_entropy(x, data["t"], weight=data["w"])
        return f

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        graphs = []
        compiled = torch.compile(loss(sxf), fullgraph=True, backend=recording(compiler, graphs))
        out, grad = run_training(compiled, x)
    want, want_grad = run_training(loss(F), x)
    assert len(graphs) == 1 and out.dtype == want.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(grad, want_grad)



#: calls whose second argument (a target; with ``weight`` for probability targets) torch differentiates too
TARGET_CASES = {
    "cross_entropy-prob": (lambda m, x, y, w: m.cross_entropy(x, y, weight=w, label_smoothing=0.1), "x", "p"),
    "binary_cross_entropy": (lambda m, x, y, w: m.binary_cross_entropy(x, y, weight=w.expand(6, 5)), "u", "p"),
    "binary_cross_entropy_with_logits": (
        lambda m, x, y, w: m.binary_cross_entropy_with_logits(x, y, pos_weight=w), "x", "u"),
    "kl_div": (lambda m, x, y, w: m.kl_div(x, y, reduction="batchmean"), "logp", "p"),
}


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("name", list(TARGET_CASES))
def test_target_gradients_compile_fullgraph(name, compiler):
    """Training a student against a trainable teacher: the gradients by the target (and a probability target's
    class weight) trace with fullgraph=True too and equal torch's."""
    call, x_key, y_key = TARGET_CASES[name]
    data = _inputs("cpu")
    wants_w = name == "cross_entropy-prob"

    def run(function):
        leaves = [data[x_key].clone().requires_grad_(), data[y_key].clone().requires_grad_(),
                  data["w"].clone().requires_grad_(wants_w)]
        out = function(*leaves)
        return [out, *torch.autograd.grad(out, leaves[:3 if wants_w else 2])]

    graphs = []
    compiled = torch.compile(lambda x, y, w: call(sxf, x, y, w), fullgraph=True, backend=recording(compiler, graphs))
    got, want = run(compiled), run(lambda x, y, w: call(F, x, y, w))
    assert len(graphs) == 1 and "symxent" in str(graphs[0].graph)
    for ours, theirs in zip(got, want):
        torch.testing.assert_close(ours, theirs)
