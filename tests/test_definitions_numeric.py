"""Every catalogue function, built for a symbolic number of classes n, agrees with torch at n = 2, 3, 7."""
import pytest

from symxent import numeric_checks

CASES = numeric_checks._cases()


@pytest.mark.parametrize("size", numeric_checks.SIZES, ids=lambda s: f"n{s}")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_symbolic_n_expression_matches_torch_at_random_points(case, size):
    for seed in range(2):
        ok, detail = numeric_checks.compare(case, size, seed)
        assert ok, detail


def test_comparison_detects_a_wrong_expression():
    """The harness itself can fail: a perturbed expression is rejected."""
    case = next(c for c in CASES if c.name == "logsumexp")
    wrong = numeric_checks.NumericCase("wrong", lambda: case.build() + 1e-6, case.reference, case.draw)
    ok, _ = numeric_checks.compare(wrong, 3)
    assert not ok
