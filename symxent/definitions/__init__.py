"""The symbolic catalogue: definitions of the cross-entropy family as SymPy expressions."""
from .functions import eliminate, log_sigmoid, sigmoid, softplus, stable_softplus
from .information import (binary_entropy, cross_entropy, entropy, jensen_shannon, kl_divergence, log_b, log_base,
                          self_information, uniform, xlogy)
from .losses import (bce, bce_with_logits, binary_cross_entropy_loss, binary_cross_entropy_with_logits_loss,
                     clamped_log, cross_entropy_loss, kl_div_loss, multilabel_bce, multilabel_bce_with_logits,
                     nll, nll_loss, one_hot, reduce, smoothed_target, softmax_cross_entropy,
                     softmax_cross_entropy_prob)
from .softmax import log_softmax, logsumexp, max_element, min_element, softmax, vector_max, vector_min
from .symbols import (MappedVector, SymbolicVector, as_expr, as_vector, c, class_sum, elements, epsilon, i, j, k, l,
                      length, n, t, vector, x)

__all__ = [name for name in dir() if not name.startswith("_")]
