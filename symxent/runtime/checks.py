"""``symxent verify``'s check of the CUDA kernels on a GPU (see symxent/verify.py): cross-entropy (bf16, label
smoothing, weights, ignored rows) against torch in float64, loss and gradient, on a machine with a usable GPU;
elsewhere it reports why it did not run. (The checked-in ``codegen/cuda/*.cu`` are checked for drift with every
other target: codegen's "generated files up to date".)
"""
from __future__ import annotations


def check_cross_entropy_on_gpu() -> tuple:
    from .cuda import unavailable_reason
    reason = unavailable_reason()
    if reason is not None:
        return None, f"skipped: {reason}"
    import torch
    import torch.nn.functional as F

    from .cuda_autograd import cross_entropy
    g = torch.Generator(device="cuda").manual_seed(0)
    z = (torch.randn(33, 1003, device="cuda", generator=g) * 4).to(torch.bfloat16)
    t = torch.randint(0, 1003, (33,), device="cuda", generator=g)
    t[::5] = -100
    w = (torch.rand(1003, device="cuda", generator=g) + 0.5).to(torch.bfloat16)
    x = z.clone().requires_grad_()
    loss = cross_entropy(x, t, w, label_smoothing=0.1)
    loss.backward()
    z64 = z.double().requires_grad_()
    ref = F.cross_entropy(z64, t, w.double(), label_smoothing=0.1)
    ref.backward()
    loss_error = abs(float(loss) - float(ref)) / abs(float(ref))
    grad_error = float((x.grad.double() - z64.grad).abs().max() / z64.grad.abs().max())
    ok = loss_error < 1e-2 and grad_error < 1e-2
    return ok, f"bf16 (33, 1003), smoothing 0.1, weights, ignored rows: loss error {loss_error:.1e}, " \
               f"gradient error {grad_error:.1e} of its largest value"


def verify_checks() -> list:
    from ..verify import Check
    return [Check("runtime cuda", "cross_entropy on the GPU matches torch", check_cross_entropy_on_gpu)]
