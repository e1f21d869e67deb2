"""symxent: the cross-entropy family, symbolically — definitions, proofs, derivations, generated code.

``import symxent`` is light: its attributes (the catalogue of :mod:`symxent.definitions` and
:class:`~symxent.codegen.loss.Loss`) are loaded at first use (PEP 562), so ``import symxent.functional``
loads neither SymPy, the generator nor the prover; nothing here imports torch.
"""
import importlib

__version__ = "0.1.0"

#: the catalogue's public names (kept in step with symxent.definitions.__all__ by a test)
_DEFINITIONS = (
    "MappedVector", "SymbolicVector", "as_expr", "as_vector", "bce", "bce_with_logits", "binary_cross_entropy_loss",
    "binary_cross_entropy_with_logits_loss", "binary_entropy", "c", "clamped_log", "class_sum", "cross_entropy",
    "cross_entropy_loss", "elements", "eliminate", "entropy", "epsilon", "i", "j", "jensen_shannon", "k", "kl_div_loss",
    "kl_divergence", "l", "length", "log_b", "log_base", "log_sigmoid", "log_softmax", "logsumexp", "max_element",
    "min_element", "multilabel_bce", "multilabel_bce_with_logits", "n", "nll", "nll_loss", "one_hot", "reduce",
    "self_information", "sigmoid", "smoothed_target", "softmax", "softmax_cross_entropy",
    "softmax_cross_entropy_prob", "softplus", "stable_softplus", "t", "uniform", "vector", "vector_max",
    "vector_min", "x", "xlogy",
)
__all__ = list(_DEFINITIONS) + ["Loss"]


def __getattr__(name: str):
    if name in _DEFINITIONS:
        return getattr(importlib.import_module(".definitions", __name__), name)
    if name == "Loss":
        from .codegen.loss import Loss
        return Loss
    raise AttributeError(f"module 'symxent' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
