"""The soundness fuzzer: >= 500 random claims from the catalogue's grammar, zero wrong verdicts.

``SYMXENT_FUZZ_CLAIMS`` (default 500) and ``SYMXENT_FUZZ_SEED`` (default 0) set the size and the seed:
``SYMXENT_FUZZ_CLAIMS=5000 python -m pytest tests/test_prover_fuzz.py`` is the nightly-style run.
"""
import os

import pytest

from symxent.prove import fuzz
from symxent.prove.verdict import PROVED, Verdict

CLAIMS = int(os.environ.get("SYMXENT_FUZZ_CLAIMS", "500"))
SEED = int(os.environ.get("SYMXENT_FUZZ_SEED", "0"))


def test_no_wrong_verdict_on_random_claims():
    report = fuzz.run(CLAIMS, seed=SEED, workers=2)
    print(report.summary())
    assert report.claims == CLAIMS >= 500 or "SYMXENT_FUZZ_CLAIMS" in os.environ
    assert report.proved >= CLAIMS // 5 and report.refuted >= CLAIMS // 5  # both kinds are exercised
    assert report.wrong == [], "\n".join(f"{lhs}  vs  {rhs} ({how}): {why}" for lhs, rhs, how, why in report.wrong)


def test_claims_mix_truths_and_perturbations_with_index_coincidences():
    claims = fuzz.claims(400, seed=3)
    assert sum(c.true for c in claims) > 100 and sum(not c.true for c in claims) > 100
    assert {c.how for c in claims} >= {"true", "constant", "scale", "swap", "index", "drop"}
    texts = " ".join(c.lhs + c.rhs for c in claims)
    assert "delta(k, k)" in texts or "delta(c, c)" in texts or "ce(z, k)" in texts  # coincident indices occur


def test_a_wrong_proof_is_caught(monkeypatch):
    """The check can fail: a fake 'proved' on a false claim is reported as wrong."""
    def fake_prove(lhs, rhs, **kwargs):
        return Verdict(PROVED, "fake", 0.0)
    monkeypatch.setattr(fuzz, "prove", fake_prove)
    status, wrong = fuzz.check(fuzz.Claim("logsumexp(z)", "z[k]", False, "constant"), seed=1)
    assert status == PROVED and "differ" in wrong


def test_a_refutation_of_a_true_claim_or_outside_the_domain_is_caught(monkeypatch):
    from symxent.prove.verdict import REFUTED
    outside = {"n": "2", "p[0]": "0.5", "p[1]": "0.7", "q[0]": "0.5", "q[1]": "0.5", "lhs": "1", "rhs": "0"}
    monkeypatch.setattr(fuzz, "prove", lambda lhs, rhs, **kw: Verdict(REFUTED, "fake", 0.0, counterexample=outside))
    assert "true by construction" in fuzz.check(fuzz.Claim("kl(p, q)", "cross_entropy(p, q) - entropy(p)", True), 1)[1]
    assert "outside the domains" in fuzz.check(fuzz.Claim("kl(p, q)", "kl(q, p)", False), 1)[1]


@pytest.mark.parametrize("claim", [fuzz.Claim("log_softmax(z)[k]", "z[k] - logsumexp(z)", True),
                                   fuzz.Claim("sigmoid(-x)", "1 - sigmoid(x)", True)])
def test_true_claims_are_proved_not_refuted(claim):
    status, wrong = fuzz.check(claim, seed=0)
    assert status == PROVED and wrong is None
