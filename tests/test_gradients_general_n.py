"""Gradients for any number of classes n: the derived form equals the textbook form written here by
hand, agrees with torch.autograd at n = 2, 3, 5, and renders as a LaTeX chain of equalities."""
import dataclasses
import random

import pytest
import sympy as sp

from symxent import c, i, j, k, l, n, sigmoid, softmax, softmax_cross_entropy_prob, vector
from symxent.derive import DERIVATIONS, Derivation, gradient, hessian, is_zero, verify_checks
from symxent.derive.catalogue import check
from symxent.definitions.binding import canonical  # equal after renaming the sums' bound indices

KD = sp.KroneckerDelta


def s(z, a):
    """softmax(z)_a written out by hand: exp(z_a) / sum_j exp(z_j)."""
    return sp.exp(z[a]) / sp.Sum(sp.exp(z[j]), (j, 0, n - 1))


# The textbook results, by hand (z, w, y, ... are the entry's own symbols, looked up by name).
TEXTBOOK = {
    "ce_index": lambda v: s(v["z"], k) - KD(k, c),
    "ce_index_weighted": lambda v: v["w"][c] * (s(v["z"], k) - KD(k, c)),
    "ce_prob": lambda v: s(v["z"], k) - v["y"][k],
    "ce_label_smoothing_weighted": lambda v: (1 - v["epsilon"]) * v["w"][c] * (s(v["z"], k) - KD(k, c))
    + v["epsilon"] / n * (sp.Sum(v["w"][i], (i, 0, n - 1)) * s(v["z"], k) - v["w"][k]),
    "nll": lambda v: -v["w"][c] * KD(k, c),
    "kl": lambda v: -v["p"][k] / v["q"][k],
    "entropy": lambda v: -sp.log(v["p"][k]) - 1,
    "bce": lambda v: -v["t"] / v["p"] + (1 - v["t"]) / (1 - v["p"]),
    "bce_with_logits": lambda v: 1 / (1 + sp.exp(-v["x"])) - v["t"],
    "bce_with_logits_pos_weight": lambda v: v["w"] * ((1 + (v["p_w"] - 1) * v["t"]) / (1 + sp.exp(-v["x"]))
                                                      - v["p_w"] * v["t"]),
    "logsumexp_hessian": lambda v: s(v["z"], k) * KD(k, l) - s(v["z"], k) * s(v["z"], l),
    "softmax_jacobian": lambda v: s(v["z"], l) * (KD(k, l) - s(v["z"], k)),
}


@pytest.fixture(scope="module")
def derived():
    return {name: spec.derive() for name, spec in DERIVATIONS.items()}


def test_registry_covers_the_issue_list():
    """Every derivation the issue asks for is registered."""
    assert set(DERIVATIONS) == set(TEXTBOOK)


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_general_n_gradient_equals_the_textbook_form(name, derived):
    """The derived result minus the hand-written textbook result simplifies to 0 for symbolic n."""
    d = derived[name]
    assert isinstance(d, Derivation) and d.name == name
    expected = TEXTBOOK[name](DERIVATIONS[name].symbolic_inputs())
    difference = (d.result - expected).rewrite(sp.exp)  # sigmoid(x) -> 1 / (1 + exp(-x))
    assert sp.simplify(sp.expand(canonical(difference))) == 0
    assert not d.result.has(sp.Piecewise, sp.Derivative, sp.Heaviside)
    assert not any(s_.has(KD) for s_ in d.result.atoms(sp.Sum))  # every delta summed away


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_general_n_derivation_is_fast(name):
    """Each general-n derivation takes well under the 5 s budget (typically < 0.1 s)."""
    sp.core.cache.clear_cache()
    assert DERIVATIONS[name].derive().seconds < 2.0


def test_ce_gradient_reads_softmax_minus_onehot_structurally(derived):
    """The CE result is literally softmax(z, k) - delta_kc (softmax exactly as softmax(z, k) writes it)."""
    z = DERIVATIONS["ce_index"].symbolic_inputs()["z"]
    assert derived["ce_index"].result - (softmax(z, k) - KD(k, c)) == 0
    assert derived["ce_prob"].result == softmax(z, k) - vector("y", positive=True)[k]


def test_constraint_matches_a_sum_whatever_its_bound_variable():
    """The constraint sum_j y_j = 1 applies to a sum over i (dummy_eq, not subs)."""
    z, y = vector("z"), vector("y", positive=True)
    constraint = sp.Eq(sp.Sum(y[j], (j, 0, n - 1)), 1)
    d = gradient(softmax_cross_entropy_prob(z, y), z, k, constraints=[constraint])
    assert d.result == softmax(z, k) - y[k]
    unconstrained = gradient(softmax_cross_entropy_prob(z, y), z, k)
    assert canonical(unconstrained.result).has(canonical(sp.Sum(y[i], (i, 0, n - 1))))  # not silently dropped


def test_hessian_of_logsumexp_is_diag_s_minus_s_st():
    """d^2 logsumexp / dz_k dz_l = s_k delta_kl - s_k s_l."""
    z = vector("z")
    d = hessian(sp.log(sp.Sum(sp.exp(z[i]), (i, 0, n - 1))), z, k, l)
    assert d.wrt == (z[k], z[l])
    assert sp.expand(canonical(d.result - (s(z, k) * KD(k, l) - s(z, k) * s(z, l)))) == 0


def test_scalar_gradient_by_a_symbol():
    """d/dx log(1 + e^x) = sigmoid(x), canonically."""
    x = sp.Symbol("x", real=True)
    d = gradient(sp.log(1 + sp.exp(x)), x)
    assert sp.simplify(d.result - 1 / (1 + sp.exp(-x))) == 0


def test_is_zero_does_not_call_unknown_zero():
    """is_zero is True for a true identity and never True for a false one."""
    z, y = vector("z"), vector("y", positive=True)
    assert is_zero(s(z, k) - sp.exp(z[k]) / sp.Sum(sp.exp(z[i]), (i, 0, n - 1))) is True
    assert is_zero(s(z, k) - y[k]) is not True
    assert is_zero(s(z, k) - KD(k, c) - (s(z, k) + KD(k, c))) is not True


def test_wrong_expected_form_fails_its_check():
    """A registry entry whose textbook form is wrong (sign of the one-hot) fails verification."""
    wrong = dataclasses.replace(DERIVATIONS["ce_index"], expected=lambda z, c, k, **_: softmax(z, k) + KD(k, c))
    ok, detail = check(wrong)
    assert not ok and "not shown equal" in detail


def test_verify_checks_pass_one_per_entry():
    """symxent verify: one passing check per registry entry (proof + concrete n = 2, 3, 5)."""
    checks = verify_checks()
    assert [ch.name for ch in checks] == list(DERIVATIONS)
    for ch in checks:
        ok, detail = ch.run()
        assert ok, f"{ch.name}: {detail}"


# --- torch.autograd at concrete n -------------------------------------------------------------

def _torch_gradient(name, v, c0):
    """The gradient (vector over k, or matrix [k, l]) from torch.autograd for one sample row."""
    import torch
    import torch.nn.functional as F
    z = v.get("z")
    target = torch.tensor([c0])
    if name in ("kl", "entropy", "nll"):
        leaf = {"kl": "q", "entropy": "p", "nll": "logp"}[name]
        var = v[leaf].clone().requires_grad_()
        loss = {"kl": lambda: F.kl_div(var.log(), v["p"], reduction="sum"),
                "entropy": lambda: torch.special.entr(var).sum(),
                "nll": lambda: F.nll_loss(var[None], target, weight=v["w"], reduction="sum")}[name]()
        return torch.autograd.grad(loss, var)[0]
    if name == "logsumexp_hessian":
        return torch.autograd.functional.hessian(lambda a: torch.logsumexp(a, 0), z)
    if name == "softmax_jacobian":
        return torch.autograd.functional.jacobian(lambda a: torch.softmax(a, 0), z)[c0]  # row l = c0
    if name.startswith("bce"):
        x = (v["p"] if name == "bce" else v["x"]).clone().requires_grad_()
        if name == "bce":
            loss = F.binary_cross_entropy(x, v["t"])
        else:
            extra = dict(weight=v["w"], pos_weight=v["p_w"]) if name.endswith("pos_weight") else {}
            loss = F.binary_cross_entropy_with_logits(x, v["t"], **extra)
        return torch.autograd.grad(loss, x)[0]
    z = z.clone().requires_grad_()
    options = {"ce_index": {}, "ce_index_weighted": dict(weight=v.get("w")),
               "ce_label_smoothing_weighted": dict(weight=v.get("w"), label_smoothing=float(v.get("epsilon", 0)))}
    if name == "ce_prob":
        loss = F.cross_entropy(z[None], v["y"][None], reduction="sum")
    else:
        loss = F.cross_entropy(z[None], target, reduction="sum", **options[name])
    return torch.autograd.grad(loss, z)[0]


def _random_inputs(spec, size, rng):
    """Random numbers per input (torch tensors) and the same numbers keyed by the sympy symbols."""
    import torch
    numbers, subs = {}, {}
    for inp, sym in zip(spec.inputs, spec.symbolic_inputs().values()):
        if inp.kind == "index":
            continue
        draw = {"real": lambda: rng.uniform(-3, 3), "positive": lambda: rng.uniform(0.2, 2),
                "unit": lambda: rng.uniform(0.05, 0.95), "simplex": lambda: rng.uniform(0.1, 1)}[inp.domain]
        if inp.kind == "vector":
            values = [draw() for _ in range(size)]
            if inp.domain == "simplex":
                values = [a / sum(values) for a in values]
            numbers[inp.name] = torch.tensor(values, dtype=torch.float64)
            subs.update({sym[m]: values[m] for m in range(size)})
        else:
            numbers[inp.name] = torch.tensor(draw(), dtype=torch.float64)
            subs[sym] = float(numbers[inp.name])
    return numbers, subs


@pytest.mark.parametrize("size", [2, 3, 5])
@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_general_n_gradient_matches_torch_autograd(name, size, derived):
    """The general-n result, specialised to n = size and evaluated, equals torch.autograd's gradient."""
    pytest.importorskip("torch")
    rng = random.Random(f"{name}-{size}")
    spec, d = DERIVATIONS[name], derived[name]
    numbers, subs = _random_inputs(spec, size, rng)
    c0 = rng.randrange(size)
    torch_grad = _torch_gradient(name, numbers, c0)
    if spec.is_scalar:
        got = float(d.result.xreplace(subs))
        assert got == pytest.approx(float(torch_grad), rel=1e-9, abs=1e-12)
        return
    fixed = {sym: c0 for inp, sym in zip(spec.inputs, spec.symbolic_inputs().values()) if inp.kind == "index"}
    general = d.result.xreplace({n: size, **fixed})
    for k0 in range(size):
        for l0 in (range(size) if spec.order == 2 else [None]):
            entry = general.xreplace({k: k0} if l0 is None else {k: k0, l: l0}).doit()
            got = float(entry.xreplace(subs))
            want = float(torch_grad[k0] if l0 is None else torch_grad[k0, l0])
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (k0, l0)


# --- LaTeX --------------------------------------------------------------------------------------

def test_ce_latex_is_a_chain_of_equalities_with_delta_and_sum(derived):
    """CE -> logsumexp - z_c -> differentiate -> softmax - onehot, one align* line per step."""
    d = derived["ce_index"]
    tex = d.latex()
    assert tex.startswith(r"\begin{align*}") and tex.rstrip().endswith(r"\end{align*}")
    assert r"\delta_{c k}" in tex and r"\sum_{j=0}^{n - 1}" in tex and r"\mathrm{softmax}(z)_{k}" in tex
    assert tex.count("&=") == len(d.steps) >= 4
    assert tex.count(r"\text{") == len(d.steps)
    assert tex.count(r"\\" + "\n") == len(d.steps) - 1
    assert r"\frac{\partial \ell}{\partial {z}_{k}}" in tex
    assert tex.count("{") == tex.count("}")
    last = d.steps[-1]
    assert str(last.expr) == "softmax(z)[k] - KroneckerDelta(c, k)" or sp.simplify(
        last.expr.doit() - d.result) == 0


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_every_derivation_renders_and_serialises(name, derived):
    """Every derivation has a definition, a derivative step and a to_dict with its LaTeX."""
    d = derived[name]
    tex = d.latex()
    assert tex.count("&=") == len(d.steps) and tex.count("{") == tex.count("}")
    assert d.steps[0].explanation == "definition" and d.steps[0].lhs is not None
    assert any(step.lhs and r"\partial" in step.lhs for step in d.steps)
    data = d.to_dict()
    assert data["name"] == name and len(data["steps"]) == len(d.steps) and data["latex"] == tex
    assert data["result"] == str(d.result)


def test_hessian_latex_has_second_derivative_line(derived):
    tex = derived["logsumexp_hessian"].latex()
    assert r"\frac{\partial^{2} \operatorname{lse}(z)}{\partial {z}_{k} \partial {z}_{l}}" in tex
    assert r"\delta_{k l}" in tex


def test_bad_variable_gets_a_clear_error():
    """Differentiating by something that is not a variable, or by an unknown input, is refused clearly."""
    with pytest.raises(TypeError, match="wrt"):
        gradient(sp.Integer(1), "z")
    with pytest.raises(ValueError, match="cannot differentiate by 'c'"):
        DERIVATIONS["ce_index"].derive(wrt="c")


def test_gradient_by_another_input_of_an_entry():
    """d CE(z, y) / d y_k = -log softmax(z)_k = logsumexp(z) - z_k."""
    d = DERIVATIONS["ce_prob"].derive(wrt="y")
    z = DERIVATIONS["ce_prob"].symbolic_inputs()["z"]
    assert sp.simplify(canonical(d.result - sp.log(sp.Sum(sp.exp(z[j]), (j, 0, n - 1))) + z[k])) == 0


def test_unweighted_label_smoothing_gradient_is_softmax_minus_smoothed_target():
    """Without weights, sum_i 1 = n: the gradient is s_k - ((1 - eps) delta_kc + eps / n)."""
    from symxent import softmax_cross_entropy
    z, eps = vector("z"), sp.Symbol("epsilon", positive=True)
    d = gradient(softmax_cross_entropy(z, c, label_smoothing=eps), z, k)
    assert sp.expand(canonical(d.result - (s(z, k) - (1 - eps) * KD(k, c) - eps / n))) == 0


def test_sums_split_by_linearity():
    """sum_i (a y_i + b) = a sum_i y_i + n b (a, b free of i)."""
    from symxent.derive.engine import split_sums
    y, a, b = vector("y"), sp.Symbol("a"), sp.Symbol("b")
    assert split_sums(sp.Sum(a * y[i] + b, (i, 0, n - 1))) == a * sp.Sum(y[i], (i, 0, n - 1)) + n * b


def test_every_derivation_ends_with_its_named_result_equal_to_the_result():
    """What a reader sees last names softmax (not the exp/Sum form) and equals the written-out result."""
    from symxent.derive import DERIVATIONS
    from symxent.derive.engine import SoftmaxElement, is_zero

    for name, spec in DERIVATIONS.items():
        derivation = spec.derive()
        named = derivation.named_result
        assert named == derivation.steps[-1].expr, name
        assert is_zero(named - derivation.result), name
        if derivation.result.has(sp.Sum) and name.startswith(("ce_", "logsumexp", "softmax")):
            assert named.has(SoftmaxElement) and not named.has(sp.exp), (name, named)
