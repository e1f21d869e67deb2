"""The worked examples of the four source documents: data (:mod:`.documents`) and verdicts (:mod:`.check`)."""
from .check import ExampleResult, check_example, run_examples, verify_checks
from .documents import DOCUMENTS, WORKED_EXAMPLES, WorkedExample

__all__ = ["DOCUMENTS", "WORKED_EXAMPLES", "WorkedExample", "ExampleResult", "check_example", "run_examples",
           "verify_checks"]
