"""Bad input: symxent.functional raises what torch.nn.functional raises (type and message), on every backend.

Each case is run through torch first; the exception torch raises (it must raise) is the expectation.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symxent.functional as sxf

BACKENDS = ["numpy", "c", "torch"]


def _x(*shape, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)


def _p(*shape, dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)


def _t(*values):
    return torch.tensor(values, dtype=torch.long)


# id -> (function name, builder of (args, kwargs)); values in torch, converted for the array backends
CASES = {
    # cross_entropy / nll_loss: targets
    "ce_target_above_range": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 5, 1, 1)), {})),
    "ce_target_negative": ("cross_entropy", lambda: ((_x(4, 3), _t(0, -1, 1, 1)), {})),
    "ce_target_out_of_range_with_ignore": ("cross_entropy", lambda: ((_x(4, 3), _t(-100, 3, 1, 1)), {})),
    "ce_target_out_of_range_kdim": ("cross_entropy", lambda: ((_x(2, 3, 4), torch.full((2, 4), 7)), {})),
    "ce_target_out_of_range_none": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 9, 1)), dict(reduction="none"))),
    "ce_target_out_of_range_smoothing": ("cross_entropy",
                                         lambda: ((_x(4, 3), _t(0, 1, 5, 0)), dict(label_smoothing=0.1))),
    "ce_target_is_other_ignore_value": ("cross_entropy",
                                        lambda: ((_x(4, 3), _t(0, -100, 1, 1)), dict(ignore_index=2))),
    "nll_target_above_range": ("nll_loss", lambda: ((_x(4, 3), _t(0, 3, 1, 1)), {})),
    "nll_target_negative_unbatched": ("nll_loss", lambda: ((_x(3), torch.tensor(-2)), {})),
    # weights
    "ce_weight_wrong_length": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(weight=torch.ones(2)))),
    "ce_weight_2d": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(weight=torch.ones(3, 1)))),
    "ce_weight_wrong_length_smoothing": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)),
                                                                   dict(weight=torch.ones(4), label_smoothing=0.2))),
    "ce_weight_wrong_length_prob": ("cross_entropy", lambda: ((_x(4, 3), _p(4, 3)), dict(weight=torch.ones(2)))),
    "ce_weight_dtype": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)),
                                                  dict(weight=torch.ones(3, dtype=torch.float64)))),
    "nll_weight_wrong_length": ("nll_loss", lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(weight=torch.ones(5)))),
    # label smoothing, probability targets
    "ce_label_smoothing_above_one": ("cross_entropy",
                                     lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(label_smoothing=1.5))),
    "ce_label_smoothing_above_one_prob": ("cross_entropy", lambda: ((_x(4, 3), _p(4, 3)), dict(label_smoothing=1.5))),
    "ce_prob_target_ignore_index": ("cross_entropy", lambda: ((_x(4, 3), _p(4, 3)), dict(ignore_index=0))),
    "ce_prob_target_ignore_index_positive": ("cross_entropy", lambda: ((_x(4, 3), _p(4, 3)), dict(ignore_index=7))),
    "ce_prob_target_integer": ("cross_entropy", lambda: ((_x(4, 3), torch.ones(4, 3, dtype=torch.long)), {})),
    "ce_0d_input": ("cross_entropy", lambda: ((torch.tensor(1.0), torch.tensor(0)), {})),
    "ce_0d_input_prob": ("cross_entropy", lambda: ((torch.tensor(1.0), torch.tensor(1.0)), {})),
    # shapes and dtypes of index targets
    "ce_batch_mismatch": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1)), {})),
    "nll_batch_mismatch": ("nll_loss", lambda: ((_x(4, 3), _t(0, 1)), {})),
    "ce_0d_target_for_batch": ("cross_entropy", lambda: ((_x(4, 3), torch.tensor(1)), {})),
    "ce_unbatched_target_size_2": ("cross_entropy", lambda: ((_x(3), _t(1, 2)), {})),
    "ce_target_2d": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)[:, None]), {})),
    "ce_target_float_1d": ("cross_entropy", lambda: ((_x(4, 3), _p(4)), {})),
    "ce_target_int32": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1).int()), {})),
    "nll_target_float": ("nll_loss", lambda: ((_x(4, 3), _t(0, 1, 2, 1).float()), {})),
    "ce_kdim_target_shape": ("cross_entropy", lambda: ((_x(2, 3, 4), torch.zeros(2, 5, dtype=torch.long)), {})),
    "ce_kdim_target_extra_dim": ("cross_entropy",
                                 lambda: ((_x(2, 3, 4), torch.zeros(2, 4, 1, dtype=torch.long)), {})),
    "ce_4d_target_dims": ("cross_entropy", lambda: ((_x(2, 3, 4, 5), torch.zeros(2, 4, dtype=torch.long)), {})),
    "ce_4d_target_size": ("cross_entropy", lambda: ((_x(2, 3, 4, 5), torch.zeros(2, 4, 6, dtype=torch.long)), {})),
    "ce_4d_batch": ("cross_entropy", lambda: ((_x(2, 3, 4, 5), torch.zeros(3, 4, 5, dtype=torch.long)), {})),
    "nll_5d_target_size": ("nll_loss", lambda: ((_x(2, 3, 4, 5, 6), torch.zeros(2, 4, 5, dtype=torch.long)), {})),
    "ce_kdim_prob_shape": ("cross_entropy", lambda: ((_x(2, 3, 4), _p(2, 3, 5)), {})),
    "nll_0d_input": ("nll_loss", lambda: ((torch.tensor(1.0), torch.tensor(0)), {})),
    # reductions
    "ce_reduction": ("cross_entropy", lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(reduction="foo"))),
    "ce_reduction_batchmean": ("cross_entropy",
                               lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(reduction="batchmean"))),
    "nll_reduction": ("nll_loss", lambda: ((_x(4, 3), _t(0, 1, 2, 1)), dict(reduction="avg"))),
    "bce_reduction": ("binary_cross_entropy", lambda: ((_p(3), _p(3)), dict(reduction="foo"))),
    "bcel_reduction": ("binary_cross_entropy_with_logits", lambda: ((_x(3), _p(3)), dict(reduction="foo"))),
    "kl_reduction": ("kl_div", lambda: ((_x(3), _p(3)), dict(reduction="foo"))),
    # binary_cross_entropy
    "bce_input_above_one": ("binary_cross_entropy", lambda: ((torch.tensor([0.5, 1.5]), _p(2)), {})),
    "bce_input_negative": ("binary_cross_entropy", lambda: ((torch.tensor([-0.1, 0.5]), _p(2)), {})),
    "bce_input_nan": ("binary_cross_entropy", lambda: ((torch.tensor([0.5, float("nan")]), _p(2)), {})),
    "bce_target_above_one": ("binary_cross_entropy", lambda: ((_p(2), torch.tensor([0.5, 2.0])), {})),
    "bce_size_mismatch": ("binary_cross_entropy", lambda: ((_p(2), _p(3)), {})),
    "bce_weight_not_broadcastable": ("binary_cross_entropy", lambda: ((_p(2, 3), _p(2, 3)), dict(weight=_p(2)))),
    "bce_weight_larger": ("binary_cross_entropy", lambda: ((_p(3), _p(3)), dict(weight=_p(2, 3)))),
    "bce_target_dtype": ("binary_cross_entropy", lambda: ((_p(2, 3), _p(2, 3, dtype=torch.float64)), {})),
    "bce_target_integer": ("binary_cross_entropy", lambda: ((_p(3), torch.ones(3, dtype=torch.long)), {})),
    # binary_cross_entropy_with_logits
    "bcel_size_mismatch": ("binary_cross_entropy_with_logits", lambda: ((_x(2), _p(3)), {})),
    "bcel_pos_weight_shape": ("binary_cross_entropy_with_logits",
                              lambda: ((_x(2, 3), _p(2, 3)), dict(pos_weight=torch.ones(2)))),
    "bcel_weight_shape": ("binary_cross_entropy_with_logits", lambda: ((_x(2, 3), _p(2, 3)), dict(weight=_p(2)))),
    "bcel_weight_larger": ("binary_cross_entropy_with_logits", lambda: ((_x(3), _p(3)), dict(weight=_p(2, 3)))),
    "bcel_target_integer": ("binary_cross_entropy_with_logits",
                            lambda: ((_x(3), torch.ones(3, dtype=torch.long)), {})),
    # kl_div
    "kl_integer_target": ("kl_div", lambda: ((_x(3), torch.ones(3, dtype=torch.long)), dict(reduction="sum"))),
    "kl_shape_mismatch": ("kl_div", lambda: ((_x(2, 3), _p(2, 2)), dict(reduction="sum"))),
    # softmax / log_softmax
    "softmax_dim_too_large": ("softmax", lambda: ((_x(4, 3), 5), {})),
    "log_softmax_dim_too_small": ("log_softmax", lambda: ((_x(4, 3), -3), {})),
    "softmax_0d_dim_1": ("softmax", lambda: ((torch.tensor(2.0), 1), {})),
}


def _convert(value, backend):
    if backend == "torch" or not isinstance(value, torch.Tensor):
        return value
    return value.numpy()


def _torch_error(name, args, kwargs):
    try:
        getattr(F, name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the expectation is whatever torch raises
        return exc
    raise AssertionError(f"torch raised nothing for {name}{args}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error_as_torch(case, backend):
    name, build = CASES[case]
    args, kwargs = build()
    expected = _torch_error(name, args, kwargs)
    ours_args = [_convert(a, backend) for a in args]
    ours_kwargs = {k: _convert(v, backend) for k, v in kwargs.items()}
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        getattr(sxf, name)(*ours_args, backend=backend, **ours_kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_in_label_smoothing_message_keeps_the_given_value(backend):
    x, t = _x(2, 3), _t(0, 1)
    with pytest.raises(RuntimeError, match=r"^label_smoothing must be between 0\.0 and 1\.0\. Got: 1\.25$"):
        sxf.cross_entropy(_convert(x, backend), _convert(t, backend), label_smoothing=1.25, backend=backend)


# --- symxent's own arguments -------------------------------------------------------------------------

def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        sxf.softmax(np.zeros(3), 0, backend="jax")


def test_backend_does_not_match_the_input_kind():
    with pytest.raises(TypeError, match="takes NumPy arrays"):
        sxf.softmax(torch.zeros(3), 0, backend="numpy")
    with pytest.raises(TypeError, match="takes torch tensors"):
        sxf.softmax(np.zeros(3), 0, backend="torch")


def test_cuda_backend_takes_tensors():  # the rest of backend="cuda": tests/test_functional_cuda_backend.py
    with pytest.raises(TypeError, match="backend='cuda' takes torch tensors"):
        sxf.softmax(np.zeros(3), 0, backend="cuda")


def test_return_grad_is_for_array_backends():
    with pytest.raises(ValueError, match="use autograd"):
        sxf.softmax(torch.zeros(3), 0, return_grad=True)
    with pytest.raises(ValueError, match="only with return_grad=True"):
        sxf.softmax(np.zeros(3), 0, grad_output=np.ones(3))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_grad_output_checks(backend):
    x, t = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match="needs grad_output="):
        sxf.cross_entropy(x, t, reduction="none", backend=backend, return_grad=True)
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2,\), got \(3,\)"):
        sxf.cross_entropy(x, t, reduction="none", backend=backend, return_grad=True, grad_output=np.ones(3))
    with pytest.raises(ValueError, match="needs grad_output="):
        sxf.softmax(x, 1, backend=backend, return_grad=True)
    with pytest.raises(ValueError, match="must be a scalar"):
        sxf.cross_entropy(x, t, backend=backend, return_grad=True, grad_output=np.ones(2))


def test_non_floating_input():
    with pytest.raises(TypeError, match="floating-point"):
        sxf.softmax(np.arange(3), 0)
    with pytest.raises(TypeError, match="floating-point"):
        sxf.softmax(torch.arange(3), 0)
