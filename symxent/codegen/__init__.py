"""Code generation: derived losses -> proved stable rewrites -> NumPy / Torch / C / CUDA kernels.

Pipeline (one module per stage): :mod:`.loss` (what to generate; :mod:`.roles` types its arguments and
kinds), :mod:`.nodes` (recognised sub-trees), :mod:`.rewrites` (proved rules), :mod:`.lowering`
(statements over rows and the class axis), :mod:`.printers` and the targets (printing and templates:
:mod:`.targets` for NumPy and Torch, :mod:`.c_target`, :mod:`.cuda.target`), :mod:`.driver` (the pipeline
and the target registry). Compiling, caching and calling the kernels is :mod:`symxent.runtime`'s.

Kernels: :data:`LOSSES` (the loss contract) and :data:`SHARD_KERNELS` (the per-shard kernels of
vocab-parallel cross-entropy), together :data:`KERNELS`.
"""
from .conformance import verify_checks
from .driver import (BACKENDS, TARGETS, compile_loss, generate, generate_files, kernels_for, load_kernel, target_registry,
                     write_all)
from .loss import KERNELS, LOSSES, SHARD_KERNELS, Loss

__all__ = ["BACKENDS", "KERNELS", "LOSSES", "SHARD_KERNELS", "TARGETS", "Loss", "compile_loss", "generate",
           "generate_files", "kernels_for", "load_kernel", "target_registry", "verify_checks", "write_all"]
