"""symxent verify's runner: a failure fails, a crash is a failure with its cause, a skip is never a pass."""
from symxent.cli import main
from symxent.verify import Check, run_all


def test_runner_reports_pass_fail_crash_and_skip():
    def crash():
        raise ZeroDivisionError("boom")

    results = run_all([Check("g", "pass", lambda: (True, "fine")), Check("g", "fail", lambda: (False, "bad")),
                       Check("g", "crash", crash), Check("g", "skip", lambda: (None, "no GPU"))])
    assert [r.status for r in results] == ["passed", "failed", "failed", "skipped"]
    assert "ZeroDivisionError" in results[2].detail


def test_verify_exit_status_follows_failures_not_skips(monkeypatch, capsys):
    import symxent.verify as verify

    monkeypatch.setattr(verify, "collect", lambda: [Check("g", "skip", lambda: (None, "no GPU"))])
    assert main(["verify", "--quiet"]) == 0
    assert "0 passed, 0 failed, 1 skipped" in capsys.readouterr().out
    monkeypatch.setattr(verify, "collect", lambda: [Check("g", "fail", lambda: (False, "wrong"))])
    assert main(["verify", "--quiet"]) == 1
