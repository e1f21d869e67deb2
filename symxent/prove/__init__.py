"""Proofs: the safe formula parser, the prover (verdicts with steps and counterexamples) and the
identity catalogue (true identities proved, plausible false ones refuted)."""
from .identities import IDENTITIES, check_all, check_identity, get_identity, is_proved, verify_checks
from .identity import Identity, IdentityResult
from .parse import FormulaError, parse_formula
from .prover import PROVED, PROVED_CONCRETE, REFUTED, STATUSES, UNKNOWN, Step, Verdict, prove

__all__ = ["IDENTITIES", "Identity", "IdentityResult", "check_all", "check_identity", "get_identity", "is_proved",
           "verify_checks", "FormulaError", "parse_formula", "PROVED", "PROVED_CONCRETE", "REFUTED", "STATUSES",
           "UNKNOWN", "Step", "Verdict", "prove"]
