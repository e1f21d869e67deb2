"""Which arguments the torch backend differentiates, and the gradients: exactly torch's (checked on torch 2.13).

torch differentiates, besides ``input``: the probability target of ``cross_entropy`` and its ``weight``, and the
target of ``binary_cross_entropy``, ``binary_cross_entropy_with_logits`` and ``kl_div``. It refuses (RuntimeError,
"... is not differentiable with respect to argument ...") the weights of ``nll_loss`` and of index-target
``cross_entropy``, ``weight`` of both BCEs and ``pos_weight``. Every expected value and message here is torch's.
The gradients by the target and the weights come from kernels generated from the same definitions
(``cross_entropy_prob_target`` / ``_weight``, ``bce_target``, ``bce_with_logits_target``, ``kl_div_target``).
"""
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-5, atol=2e-6)}


def _rand(*shape, dtype, seed, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low).to(dtype)


def _gradients(fn, args, kwargs, wrt):
    """(output, gradients of the arguments at positions ``wrt`` / names ``wrt``) with a non-uniform upstream."""
    args = [a.detach().clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
            for i, a in enumerate(args)]
    kwargs = {k: v.detach().clone().requires_grad_(k in wrt) if isinstance(v, torch.Tensor) else v
              for k, v in kwargs.items()}
    out = fn(*args, **kwargs)
    upstream = torch.linspace(-1.5, 2.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    leaves = [args[i] if isinstance(i, int) else kwargs[i] for i in wrt]
    return out.detach(), torch.autograd.grad(out, leaves, upstream)


def _check(name, args, kwargs, wrt, dtype):
    ref_out, ref_grads = _gradients(getattr(F, name), args, kwargs, wrt)
    out, grads = _gradients(getattr(sxf, name), args, kwargs, wrt)
    torch.testing.assert_close(out, ref_out, equal_nan=True, **TOL[dtype])
    for ours, ref, what in zip(grads, ref_grads, wrt):
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, what
        torch.testing.assert_close(ours, ref, equal_nan=True, **TOL[dtype], msg=lambda m: f"d/d {what}: {m}")


DTYPES = [torch.float64, torch.float32]
REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)], ids=str)
def test_cross_entropy_probability_target_and_weight(shape, smoothing, dtype, reduction):
    x = _rand(*shape, dtype=dtype, seed=0, low=-4, high=4)
    y = _rand(*shape, dtype=dtype, seed=1)
    w = _rand(shape[1] if len(shape) > 1 else shape[0], dtype=dtype, seed=2, low=0.2, high=1.5)
    kwargs = dict(weight=w, label_smoothing=smoothing, reduction=reduction)
    _check("cross_entropy", (x, y), kwargs, (0, 1, "weight"), dtype)
    _check("cross_entropy", (x, y), kwargs, (1,), dtype)  # the target alone (a trainable teacher)
    _check("cross_entropy", (x, y), dict(reduction=reduction), (1,), dtype)


def test_cross_entropy_probability_target_gradient_is_stable_at_large_logits():
    # d/dy_k = -w_k log softmax_k: formed once (lse - z_k), not as expanded terms that cancel at 1e4
    x = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 3]], dtype=torch.float32)
    y = torch.tensor([[0.25, 0.25, 0.25, 0.25]])
    _check("cross_entropy", (x, y), dict(label_smoothing=0.1, weight=torch.tensor([1.0, 0.5, 2.0, 1.0])),
           (1, "weight"), torch.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binary_cross_entropy_input_and_target(dtype, reduction):
    # p at 0 and 1 (the gradient by p is torch's w (p - t) / max(p (1 - p), 1e-12); by t: -w logit(p), +-inf)
    p = _rand(3, 6, dtype=dtype, seed=3)
    p[0, :4] = torch.tensor([0.0, 1.0, 1e-7, 1 - 1e-7], dtype=dtype)
    p[1, :2] = torch.tensor([0.0, 1.0], dtype=dtype)
    t = _rand(3, 6, dtype=dtype, seed=4)
    t[1, :2] = torch.tensor([0.0, 1.0], dtype=dtype)  # p = t in {0, 1}: torch's gradient 0 (the exact one: -1)
    w = _rand(3, 6, dtype=dtype, seed=5, low=0.5, high=2)
    _check("binary_cross_entropy", (p, t), dict(reduction=reduction), (0, 1), dtype)
    _check("binary_cross_entropy", (p, t), dict(weight=w, reduction=reduction), (0, 1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binary_cross_entropy_gradient_where_p_1_minus_p_is_below_1e_12(dtype):
    # float32 sigmoid of logits below about -27.6: p (1 - p) < 1e-12 although the -100 clamp is inactive
    p = torch.sigmoid(torch.tensor([-26.0, -27.0, -28.0, -30.0, -60.0, 30.0], dtype=dtype))
    t = torch.tensor([0.0, 1.0, 0.3, 1.0, 0.0, 0.5], dtype=dtype)
    _check("binary_cross_entropy", (p, t), dict(reduction="sum"), (0,), dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_binary_cross_entropy_with_logits_target(with_pos_weight, dtype, reduction):
    x = _rand(4, 5, dtype=dtype, seed=6, low=-30, high=30)
    t = _rand(4, 5, dtype=dtype, seed=7)
    kwargs = dict(reduction=reduction, weight=_rand(5, dtype=dtype, seed=8, low=0.5, high=2))
    if with_pos_weight:
        kwargs["pos_weight"] = _rand(5, dtype=dtype, seed=9, low=0.5, high=3)
    _check("binary_cross_entropy_with_logits", (x, t), kwargs, (0, 1), dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_target(log_target, dtype, reduction):
    x = torch.log_softmax(_rand(3, 5, dtype=dtype, seed=10, low=-3, high=3), 1)
    t = _rand(3, 5, dtype=dtype, seed=11)
    if log_target:
        t = t.log()
    else:
        t[0, :2] = 0.0  # torch: NaN there (xlogy(t, t)'s t / t)
    with pytest.warns(UserWarning) if reduction == "mean" else _nothing():
        _check("kl_div", (x, t), dict(reduction=reduction, log_target=log_target), (0, 1), dtype)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- what torch refuses: the same exception and message -----------------------------------------------

def _refusals():
    x, logp = torch.randn(4, 3), torch.log_softmax(torch.randn(4, 3), 1)
    index, prob = torch.tensor([0, 2, 1, 2]), torch.rand(4, 3)
    weight = torch.rand(3)
    full = torch.rand(4, 3)
    return {
        "nll_loss_weight": ("nll_loss", (logp, index), dict(weight=weight)),
        "nll_loss_kdim_weight": ("nll_loss", (torch.randn(2, 3, 2), torch.zeros(2, 2, dtype=torch.long)),
                                 dict(weight=weight)),  # torch names nll_loss2d_forward
        "cross_entropy_4d_weight": ("cross_entropy", (torch.randn(2, 3, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long)),
                                    dict(weight=weight)),
        "cross_entropy_index_weight": ("cross_entropy", (x, index), dict(weight=weight)),
        "bce_weight": ("binary_cross_entropy", (torch.sigmoid(x), prob), dict(weight=full)),
        "bce_with_logits_weight": ("binary_cross_entropy_with_logits", (x, prob), dict(weight=full)),
        "bce_with_logits_pos_weight": ("binary_cross_entropy_with_logits", (x, prob), dict(pos_weight=weight)),
    }


@pytest.mark.parametrize("case", sorted(_refusals()))
def test_refused_gradients_raise_as_torch(case):
    name, args, kwargs = _refusals()[case]
    argument = next(iter(kwargs))
    kwargs = {argument: kwargs[argument].clone().requires_grad_(True)}
    with pytest.raises(RuntimeError) as expected:
        getattr(F, name)(*args, **kwargs)
    with pytest.raises(RuntimeError) as ours:
        getattr(sxf, name)(*args, **kwargs)
    assert str(ours.value) == str(expected.value)
