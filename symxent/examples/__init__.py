"""The worked examples of the four source articles: data (:mod:`.documents`) and verdicts (:mod:`.check`)."""
from .check import ExampleResult, check_example, run_examples, verify_checks
from .documents import SOURCES, WORKED_EXAMPLES, Source, WorkedExample

__all__ = ["SOURCES", "Source", "WORKED_EXAMPLES", "WorkedExample", "ExampleResult", "check_example",
           "run_examples", "verify_checks"]
