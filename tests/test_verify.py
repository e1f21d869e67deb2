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


def test_every_check_module_contributes_and_the_gpu_check_runs_or_says_why():
    """Each module of CHECK_MODULES exists and names its checks; the CUDA runtime's check runs where a
    GPU can, and elsewhere is skipped with the reason (never a crash: a moved import would be one)."""
    from symxent.runtime.cuda import unavailable_reason
    from symxent.verify import CHECK_MODULES, collect, run_check
    checks = collect()
    assert {c.group.split()[0] for c in checks} >= {"runtime"} and len(CHECK_MODULES) == len(set(CHECK_MODULES))
    (gpu,) = [c for c in checks if c.group == "runtime cuda"]
    result = run_check(gpu)
    reason = unavailable_reason()
    if reason is None:
        assert result.status == "passed", result.detail
    else:
        assert result.status == "skipped" and reason in result.detail
