r"""LaTeX for derivations: named functions print as the math (``\sigma(x)``, ``\mathrm{softmax}(z)_k``),
and a derivation prints as an ``align*`` block of equalities with ``\text{...}`` explanations."""
from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter


class DerivationLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer, knowing symxent's named functions."""

    def _print_Add(self, expr, order=None):
        """Terms in SymPy's order, but those with a leading minus after the others (``s_k - \\delta``)."""
        terms = sorted(self._as_ordered_terms(expr, order=order), key=lambda t: t.could_extract_minus_sign())
        return super()._print_Add(sp.Add(*terms, evaluate=False), order="none")

    def _print_SoftmaxElement(self, expr):
        base, index, _ = expr.args
        return rf"\mathrm{{softmax}}({self._print(base)})_{{{self._print(index)}}}"

    def _print_sigmoid(self, expr, exp=None):
        return self._power(r"\sigma", expr, exp)

    def _print_softplus(self, expr, exp=None):
        return self._power(r"\operatorname{softplus}", expr, exp)

    def _print_log_sigmoid(self, expr, exp=None):
        return self._power(r"\log \sigma", expr, exp)

    def _power(self, name, expr, exp):
        body = rf"{name}\left({self._print(expr.args[0])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"


def derivation_latex(expr) -> str:
    """LaTeX of one expression of a derivation."""
    return DerivationLatexPrinter().doprint(expr)


def derivation_align(derivation) -> str:
    """``\\begin{align*} lhs &= e_1 && \\text{why} \\\\ &= e_2 ... \\end{align*}``."""
    lines = []
    for step in derivation.steps:
        lhs = step.lhs if step.lhs is not None else ""
        lines.append(rf"{lhs} &= {derivation_latex(step.expr)} && \text{{{step.explanation}}}")
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"
