"""Derivation: gradients and Hessians of the catalogue for any n, in canonical form, with LaTeX steps."""
from .catalogue import DERIVATIONS, DerivationSpec, Input, derive_all, verify_checks
from .engine import (Derivation, Rewrite, SoftmaxElement, Step, apply_constraints, gradient, hessian, is_zero,
                     sum_kronecker_deltas)

__all__ = ["DERIVATIONS", "Derivation", "DerivationSpec", "Input", "Rewrite", "SoftmaxElement", "Step",
           "apply_constraints", "derive_all", "gradient", "hessian", "is_zero", "sum_kronecker_deltas",
           "verify_checks"]
