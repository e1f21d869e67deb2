"""symxent: the cross-entropy family, symbolically — definitions, proofs, derivations, generated code.

``import symxent`` is light: it never imports torch (the numeric backends import it on use).
"""
from .definitions import *  # noqa: F401,F403
from .definitions import __all__ as _definitions_all

from .codegen.loss import Loss  # noqa: E402  (user-defined row losses; does not import torch)

__version__ = "0.1.0"
__all__ = list(_definitions_all) + ["Loss"]
