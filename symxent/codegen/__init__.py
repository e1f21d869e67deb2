"""Code generation: derived losses -> proved stable rewrites -> NumPy / Torch / C kernels.

Pipeline (one module per stage): :mod:`.loss` (what to generate), :mod:`.nodes` (recognised
sub-trees), :mod:`.rewrites` (proved rules), :mod:`.lowering` (statements over rows and the class
axis), :mod:`.printers` and :mod:`.targets` / :mod:`.c_target` (printing and templates),
:mod:`.build` (compile and cache C), :mod:`.driver` (the pipeline).

Kernels: :data:`LOSSES` (the loss contract) and :data:`SHARD_KERNELS` (the per-shard kernels of
vocab-parallel cross-entropy), together :data:`KERNELS`.
"""
from .conformance import verify_checks
from .driver import BACKENDS, compile_loss, generate, generate_files, load_kernel, write_all
from .loss import KERNELS, LOSSES, SHARD_KERNELS, Loss

__all__ = ["BACKENDS", "KERNELS", "LOSSES", "SHARD_KERNELS", "Loss", "compile_loss", "generate", "generate_files",
           "load_kernel", "verify_checks", "write_all"]
