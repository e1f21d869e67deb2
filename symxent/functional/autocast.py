"""torch's autocast policy for the functions of :mod:`symxent.functional`, in one place.

Inside ``torch.autocast(device_type)`` torch runs these ops under a per-device cast policy (ATen's
``autocast_mode.cpp``, checked against torch 2.13 by ``tests/test_nn_losses.py``):

====================================  ======================  ==================================
function                              CPU                     CUDA
====================================  ======================  ==================================
cross_entropy                         fp32                    fp32 (its decomposition: log_softmax
                                                              and nll_loss)
nll_loss                              fp32                    fp32
softmax, log_softmax                  none (dtype unchanged)  fp32_set_opt_dtype
binary_cross_entropy                  fp32                    banned (RuntimeError)
binary_cross_entropy_with_logits      fp32                    fp32
kl_div                                fp32                    fp32
====================================  ======================  ==================================

``fp32``: every floating-point tensor argument on the autocast device that is not float64 is cast to float32
(so a bfloat16 / float16 input gives a float32 loss; float64 stays float64). ``fp32_set_opt_dtype``: without an
explicit ``dtype=``, an eligible (floating, not float64) input runs and returns in float32; with one, nothing
changes. The casts are ordinary differentiable ``Tensor.to`` calls, so the input's gradient comes back in its
own dtype, as in torch. :func:`autocast_inputs` is the one call :mod:`.api` makes at the start of each function;
it returns its arguments unchanged for NumPy arrays (without importing torch) and outside autocast.
"""
from __future__ import annotations

from .dispatch import is_tensor

FP32, FP32_SET_OPT_DTYPE, BANNED = "fp32", "fp32_set_opt_dtype", "banned"

#: function -> {device type: policy}; a device type not listed: autocast leaves the arguments alone
POLICY = {
    "cross_entropy": {"cpu": FP32, "cuda": FP32},
    "nll_loss": {"cpu": FP32, "cuda": FP32},
    "softmax": {"cuda": FP32_SET_OPT_DTYPE},
    "log_softmax": {"cuda": FP32_SET_OPT_DTYPE},
    "binary_cross_entropy": {"cpu": FP32, "cuda": BANNED},
    "binary_cross_entropy_with_logits": {"cpu": FP32, "cuda": FP32},
    "kl_div": {"cpu": FP32, "cuda": FP32},
}

#: torch's message for binary_cross_entropy under CUDA autocast (``binary_cross_entropy_banned``)
BCE_BANNED = ("torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
              "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
              "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
              "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
              "safe to autocast.")


def autocast_inputs(function, input, *others, dtype=None):
    """``(input, *others)`` as torch's autocast hands them to ``function``'s op: unchanged unless ``input`` is a
    tensor and autocast is enabled on its device type; then cast by :data:`POLICY` (``dtype``: softmax's
    explicit output dtype, which ``fp32_set_opt_dtype`` respects)."""
    arguments = (input, *others)
    if not is_tensor(input):
        return arguments
    import torch

    device = input.device.type
    policy = POLICY[function].get(device)
    if policy is None or not torch.is_autocast_enabled(device):
        return arguments
    if policy == BANNED:
        raise RuntimeError(BCE_BANNED)

    def eligible(value):
        return (isinstance(value, torch.Tensor) and value.device.type == device and value.is_floating_point()
                and value.dtype != torch.float64)

    if policy == FP32_SET_OPT_DTYPE:  # only the output dtype (= the compute dtype here), only if not given
        if dtype is not None or not eligible(input):
            return arguments
        return (input.to(torch.float32), *others)
    return tuple(value.to(torch.float32) if eligible(value) else value for value in arguments)
