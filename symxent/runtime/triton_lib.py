"""What every generated Triton module (``codegen/triton/NAME.py``) shares: device helpers the interpreter can run
(no libdevice) and the launch choices. The generated modules import these names; Triton resolves a ``@triton.jit``
helper a kernel calls through the kernel module's globals."""
import torch
import triton
import triton.language as tl

#: the largest class block of a row kernel (a longer row is streamed in blocks)
MAX_ROW_BLOCK = 4096


@triton.jit
def _log1p(x):
    """log(1 + x), accurate for small x without libdevice (Goldberg: log(u) * x / (u - 1), u = 1 + x)."""
    u = 1.0 + x
    return tl.where(u == 1.0, x, tl.log(u) * (x / tl.where(u == 1.0, 1.0, u - 1.0)))


@triton.jit
def _pow(x, y):
    """x ** y for x >= 0 (0 ** y = 0 for y > 0, 1 for y == 0)."""
    return tl.where(x == 0.0, tl.where(y == 0.0, 1.0, 0.0), tl.exp(y * tl.log(tl.where(x == 0.0, 1.0, x))))


@triton.jit
def _tanh(x):
    """tanh(x) = sign(x) (1 - e^(-2|x|)) / (1 + e^(-2|x|)): no overflow, without libdevice."""
    t = tl.exp(-2.0 * tl.abs(x))
    return tl.where(x < 0, -1.0, 1.0) * ((1.0 - t) / (1.0 + t))


@triton.jit
def _shift(m):
    """The shift the sums are taken at: the running maximum, or 0 while every score so far is -inf."""
    return tl.where(m == float("-inf"), 0.0, m)


def _compute(like):
    return tl.float64 if like.dtype == torch.float64 else tl.float32


def _accumulate(like):
    """Per-row losses and logsumexps: float32 (float64 for float64 input), whatever the input's precision."""
    return torch.float64 if like.dtype == torch.float64 else torch.float32


def _row_block(n_cols):
    return min(triton.next_power_of_2(n_cols), MAX_ROW_BLOCK)
