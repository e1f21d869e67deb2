"""The identity catalogue: >= 20 identities proved for general n, >= 5 false ones refuted with
counterexamples that are re-evaluated here, independently, with mpmath from hand-written formulas."""
import time

import mpmath
import pytest

from symxent.prove import IDENTITIES, PROVED, REFUTED, check_all, get_identity, verify_checks
from symxent.prove.identities import DISPLAY_ONLY, NAMES, is_proved
from symxent.prove.parse import parse_formula
from symxent.prove.prover import prove

mpmath.mp.dps = 50

#: rewrites the code generator relies on: each must be in the catalogue and proved
CODEGEN_REWRITES = ("logsumexp_shift", "exp_add_log", "sum_linearity", "softmax_via_logsumexp", "log_softmax_def",
                    "softplus_stable", "log_sigmoid_stable", "sigmoid_via_exp", "ce_is_lse_minus_target",
                    "bce_with_logits_is_softplus")


@pytest.fixture(scope="module")
def results():
    start = time.perf_counter()
    out = {r.identity.name: r for r in check_all()}
    out["_total_seconds"] = time.perf_counter() - start
    return out


def test_catalogue_has_enough_true_and_false_rows_with_unique_names():
    names = [identity.name for identity in IDENTITIES]
    assert len(names) == len(set(names))
    assert sum(identity.expected == PROVED for identity in IDENTITIES) >= 20
    assert sum(identity.expected == REFUTED for identity in IDENTITIES) >= 5


def test_every_row_gets_its_expected_verdict(results):
    wrong = {name: (r.verdict.status, r.identity.expected) for name, r in results.items()
             if not name.startswith("_") and not r.ok}
    assert wrong == {}


def test_true_rows_are_proved_for_general_n_and_fast(results):
    proved = [r for r in results.values() if not isinstance(r, float) and r.identity.expected == PROVED]
    assert len(proved) >= 20
    for r in proved:
        assert r.verdict.status == PROVED, r.identity.name
        assert r.verdict.steps, r.identity.name
        assert 0 < r.verdict.seconds < 5, (r.identity.name, r.verdict.seconds)


def test_whole_catalogue_runs_within_budget(results):
    """0.2 s a row on average (about 14 s for the 103 rows of 2026-12-04, 15.3 s for 106 inside pytest): the budget
    grows with the catalogue; a single slow row is caught by the 5 s limit of each row."""
    assert results["_total_seconds"] < 0.2 * len(IDENTITIES)


def test_codegen_rewrites_are_in_the_catalogue_and_proved(results):
    for name in CODEGEN_REWRITES:
        assert results[name].verdict.status == PROVED
        assert is_proved(name)
    assert not is_proved("sympy_logsumexp_2terms_opt")
    with pytest.raises(KeyError):
        get_identity("no_such_identity")


def test_records_have_the_cli_keys(results):
    record = results["kl_symmetric"].to_dict()
    assert {"name", "lhs", "rhs", "expected", "status", "seconds", "counterexample"} <= set(record)
    assert record["status"] == REFUTED and record["seconds"] > 0
    assert all(isinstance(v, str) for v in record["counterexample"].values())


def test_formula_strings_parse_to_the_rows_sides():
    """The printed lhs / rhs are formulas (pasteable into ``symxent prove``) equal to the built sides."""
    for identity in IDENTITIES:
        if identity.name in DISPLAY_ONLY:
            continue
        built = identity.sides()
        for text, side in zip((identity.lhs, identity.rhs), built):
            parsed = parse_formula(text, names=NAMES)
            if identity.formula:  # proved from the strings themselves: the sides are their parse
                assert parsed == side, (identity.name, text)
            else:
                assert prove(parsed, side, identity.assumptions).status == PROVED, (identity.name, text)


def test_verify_checks_one_per_row():
    checks = verify_checks()
    assert [c.name for c in checks] == [identity.name for identity in IDENTITIES]
    assert {c.group for c in checks} == {"identities"}
    ok, detail = next(c for c in checks if c.name == "kl_symmetric").run()
    assert ok and "refuted" in detail


# --- each false row's counterexample, recomputed by hand ------------------------------------------

def _v(cex, key):
    return mpmath.mpf(cex[key])


def _vec(cex, name, size=None):
    size = int(cex["n"]) if size is None else size
    return [_v(cex, f"{name}[{m}]") for m in range(size)]


def _lse(values):
    return mpmath.log(mpmath.fsum(mpmath.exp(v) for v in values))


def _softmax(values, index):
    return mpmath.exp(values[index] - _lse(values))


def _torch_smoothed_ce(zs, c, eps):
    """PyTorch: (1 - eps) (lse - z_c) + eps / n * sum_i (lse - z_i)."""
    lse, size = _lse(zs), len(zs)
    return (1 - eps) * (lse - zs[c]) + eps / size * mpmath.fsum(lse - v for v in zs)


def _sides_kl_symmetric(cex):
    p, q = _vec(cex, "p"), _vec(cex, "q")
    return (mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(p, q)),
            mpmath.fsum(b * mpmath.log(b / a) for a, b in zip(p, q)))


def _sides_cross_entropy_symmetric(cex):
    p, q = _vec(cex, "p"), _vec(cex, "q")
    return -mpmath.fsum(a * mpmath.log(b) for a, b in zip(p, q)), -mpmath.fsum(b * mpmath.log(a) for a, b in zip(p, q))


def _sides_sympy_logsumexp_2terms_opt(cex):
    a, b = _v(cex, "a"), _v(cex, "b")
    return mpmath.log(mpmath.exp(a) + mpmath.exp(b)), max(a, b) + mpmath.log1p(mpmath.exp(min(a, b)))


def _sides_megatron_smoothing_equals_pytorch(cex):
    zs, c, eps = _vec(cex, "z"), int(cex["c"]), _v(cex, "epsilon")  # the catalogue's label-smoothing symbol
    size = len(zs)
    return _torch_smoothed_ce(zs, c, eps * size / (size - 1)), _torch_smoothed_ce(zs, c, eps)


def _sides_softmax_scale_invariant(cex):
    zs, k = _vec(cex, "z"), int(cex["k"])
    return _softmax([2 * v for v in zs], k), _softmax(zs, k)


def _sides_weighted_mean_divides_by_count(cex):
    u, v, w = _vec(cex, "u", 3), _vec(cex, "v", 3), [_v(cex, "w[0]"), None, _v(cex, "w[2]")]
    losses = [w[0] * (_lse(u) - u[0]), w[2] * (_lse(v) - v[2])]  # targets 0 and 2
    return mpmath.fsum(losses) / (w[0] + w[2]), mpmath.fsum(losses) / 2


def _sides_sigmoid_multilabel_equals_softmax(cex):
    zs, k = _vec(cex, "z"), int(cex["k"])
    return 1 / (1 + mpmath.exp(-zs[k])), _softmax(zs, k)


def _sides_entropy_bits_times_ln2(cex):
    p = _vec(cex, "p")
    h = -mpmath.fsum(a * mpmath.log(a) for a in p)
    return h / mpmath.log(2), h * mpmath.log(2)


def _sides_bce_clamped_equals_bce_with_logits(cex):
    xv, tv = _v(cex, "x"), _v(cex, "t")
    log_sig = -mpmath.log1p(mpmath.exp(-xv))  # log sigmoid(x)
    log_one_minus = -mpmath.log1p(mpmath.exp(xv))  # log(1 - sigmoid(x)) = log sigmoid(-x)
    torch_bce = -(tv * max(log_sig, -100) + (1 - tv) * max(log_one_minus, -100))
    return torch_bce, mpmath.log1p(mpmath.exp(xv)) - tv * xv


def _sides_sum_of_shard_logsumexps(cex):
    u, v = _vec(cex, "u"), _vec(cex, "v")
    return _lse(u + v), _lse(u) + _lse(v)


def _sides_shard_local_softmax_gradient(cex):
    """d/du_k of the global CE (target c on shard u) is the global softmax minus onehot, not the local one."""
    u, v, k, c = _vec(cex, "u"), _vec(cex, "v"), int(cex["k"]), int(cex["c"])
    onehot = 1 if k == c else 0
    return _softmax(u + v, k) - onehot, _softmax(u, k) - onehot


def _sides_entropy_at_most_one_nat(cex):
    p = _vec(cex, "p")
    return -mpmath.fsum(a * mpmath.log(a) for a in p), mpmath.mpf(1)


def _sides_entropy_at_least_log_n(cex):
    p = _vec(cex, "p")
    return -mpmath.fsum(a * mpmath.log(a) for a in p), mpmath.log(len(p))


def _sides_logsumexp_at_most_max(cex):
    zs = _vec(cex, "z")
    return _lse(zs), max(zs)


def _sides_softmax_temperature_invariant(cex):
    zs, k, temperature = _vec(cex, "z"), int(cex["k"]), _v(cex, "T")
    return _softmax([v / temperature for v in zs], k), _softmax(zs, k)


def _sides_distillation_gradient_without_t_squared(cex):
    """d/dv_k KL(softmax(u/T) || softmax(v/T)) = (q_k - p_k) / T, by hand (Hinton et al., sec. 2)."""
    u, v, k, temperature = _vec(cex, "u"), _vec(cex, "v"), int(cex["k"]), _v(cex, "T")
    p_k = _softmax([a / temperature for a in u], k)
    q_k = _softmax([a / temperature for a in v], k)
    return (q_k - p_k) / temperature, q_k - p_k


def _sides_label_smoothing_as_logsumexp(cex):
    zs, c, eps = _vec(cex, "z"), int(cex["c"]), _v(cex, "eps")
    return _torch_smoothed_ce(zs, c, eps), (1 - eps) * (_lse(zs) - zs[c]) + eps * _lse(zs)


def _sides_bce_with_logits_even_in_x(cex):
    xv, tv = _v(cex, "x"), _v(cex, "t")
    softplus = lambda a: mpmath.log1p(mpmath.exp(a))  # noqa: E731
    return softplus(-xv) + tv * xv, softplus(xv) - tv * xv


def _sides_focal_loss_with_gamma_1_is_cross_entropy(cex):
    zs, c = _vec(cex, "z"), int(cex["c"])
    s_c = _softmax(zs, c)
    return -(1 - s_c) * mpmath.log(s_c), -mpmath.log(s_c)


def _sides_mean_of_chunk_means_is_the_mean(cex):
    a1, a2, w1, w2 = (_v(cex, name) for name in ("a1", "a2", "w1", "w2"))
    return (a1 / w1 + a2 / w2) / 2, (a1 + a2) / (w1 + w2)


HAND_SIDES = {name[len("_sides_"):]: fn for name, fn in globals().items() if name.startswith("_sides_")}


def test_every_false_row_has_a_hand_formula():
    assert {i.name for i in IDENTITIES if i.expected == REFUTED} == set(HAND_SIDES)


@pytest.mark.parametrize("name", sorted(HAND_SIDES))
def test_counterexample_sides_really_differ(results, name):
    """Both reported sides match the hand formula at the counterexample (40 digits) and differ."""
    cex = results[name].verdict.counterexample
    assert cex is not None
    lhs, rhs = HAND_SIDES[name](cex)
    assert abs(mpmath.mpf(cex["lhs"]) - lhs) <= mpmath.mpf(10) ** -40 * max(1, abs(lhs))
    assert abs(mpmath.mpf(cex["rhs"]) - rhs) <= mpmath.mpf(10) ** -40 * max(1, abs(rhs))
    assert abs(lhs - rhs) > mpmath.mpf(10) ** -10 * max(1, abs(lhs))
    relation = get_identity(name).relation  # an inequality's counterexample breaks it, in its direction
    assert relation == "==" or (lhs > rhs if relation == "<=" else lhs < rhs)
