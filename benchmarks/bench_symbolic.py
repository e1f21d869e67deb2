"""Symbolic targets: each general-n proof and derivation in 5 s or less; `symxent verify` in 60 s or less.

    python benchmarks/bench_symbolic.py [--repeats 3]

Prints one table row per identity and derivation (median seconds over the repeats, cold caches for the
first), then the wall time of a whole `symxent verify` run in a fresh process, with the ratio to its
60 s budget.
"""
import argparse
import statistics
import subprocess
import sys
import time

PROOF_BUDGET_S = 5.0
VERIFY_BUDGET_S = 60.0


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from symxent.derive import DERIVATIONS
    from symxent.prove import IDENTITIES, check_identity

    rows = []
    for identity in IDENTITIES:
        status = []
        median, worst = timed(lambda: status.append(check_identity(identity).verdict.status), args.repeats)
        rows.append(("identity", identity.name, status[-1], median, worst))
    for name, spec in DERIVATIONS.items():
        median, worst = timed(spec.derive, args.repeats)
        rows.append(("derivation", name, "derived", median, worst))

    print(f"{'kind':<11} {'name':<45} {'status':<16} {'median s':>9} {'worst s':>8}")
    for kind, name, status, median, worst in rows:
        flag = "" if worst <= PROOF_BUDGET_S else "  OVER BUDGET"
        print(f"{kind:<11} {name:<45} {status:<16} {median:9.3f} {worst:8.3f}{flag}")
    general = [r for r in rows if r[2] in ("proved", "derived")]
    slowest = max(general, key=lambda r: r[4])
    print(f"\n{len(general)} general-n proofs/derivations; slowest {slowest[1]} {slowest[4]:.3f} s "
          f"= {slowest[4] / PROOF_BUDGET_S:.2f}x of the {PROOF_BUDGET_S:.0f} s budget")

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "symxent", "verify", "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    print(f"symxent verify: exit {done.returncode}, {wall:.1f} s wall = {wall / VERIFY_BUDGET_S:.2f}x of the "
          f"{VERIFY_BUDGET_S:.0f} s budget ({last})")


if __name__ == "__main__":
    main()
