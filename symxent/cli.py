"""The ``symxent`` command line: a thin layer over the library.

Each subcommand parses its arguments, calls the plain Python API, and prints a table or JSON.
Exit status: 0 success, 1 a check failed / a claim was refuted, 2 bad input, 3 unknown (``prove``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time


class UserError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


# --- output helpers -------------------------------------------------------------------------

def table(rows: list, headers: list) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[col]) for r in cells) for col in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _shorten(text, width=60) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_json(records) -> None:
    print(json.dumps(records, indent=2, ensure_ascii=False, default=str))


# --- subcommands ----------------------------------------------------------------------------

def cmd_examples(args) -> int:
    """The worked examples of the source documents with their verdicts."""
    from .examples.check import run_examples

    results = run_examples()
    if args.json:
        _print_json([r.to_dict() for r in results])
        return 0
    rows = [(r.document, _shorten(r.example, 28), _shorten(r.quantity, 28), _shorten(r.stated, 14),
             _shorten(r.computed, 16), r.verdict) for r in results]
    print(table(rows, ["document", "example", "quantity", "stated", "computed", "verdict"]))
    counts = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    print("\n" + ", ".join(f"{v}: {c}" for v, c in sorted(counts.items())) + f" ({len(results)} values)")
    notes = [r for r in results if r.verdict != "agrees" and r.note]
    if notes:
        print("\nNotes:")
        for r in notes:
            print(f"- {r.document} / {r.example} / {r.quantity} [{r.verdict}]: {r.note}")
    return 0


def cmd_verify(args) -> int:
    """Run every check the package knows; exit 1 if any fails."""
    from .verify import collect, run_all

    start = time.perf_counter()
    checks = collect()
    if args.group:
        checks = [c for c in checks if any(g.lower() in c.group.lower() for g in args.group)]
        if not checks:
            raise UserError(f"no check group matches {args.group}")
    stream = sys.stderr

    def progress(index, total, result):
        if args.quiet:
            return
        mark = "ok  " if result.ok else "FAIL"
        stream.write(f"[{index:3d}/{total}] {mark} {result.group}: {result.name} ({result.seconds:.2f} s)\n")
        if not result.ok:
            stream.write(f"           {result.detail}\n")
        stream.flush()

    results = run_all(checks, progress)
    elapsed = time.perf_counter() - start
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        groups = {}
        for r in results:
            g = groups.setdefault(r.group, [0, 0, 0.0])
            g[0 if r.ok else 1] += 1
            g[2] += r.seconds
        rows = [(name, p, f, f"{s:.2f}") for name, (p, f, s) in groups.items()]
        print(table(rows, ["group", "passed", "failed", "seconds"]))
        failed = [r for r in results if not r.ok]
        for r in failed:
            print(f"FAILED {r.group}: {r.name}: {r.detail}")
        print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed in {elapsed:.1f} s")
    return 0 if all(r.ok for r in results) else 1


def _add(sub, name, func, help_text):
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symxent",
        description="The cross-entropy family, symbolically: definitions, proofs, derivations and generated code.",
    )
    parser.add_argument("--version", action="version", version="symxent 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(sub, "verify", cmd_verify, "run every check symxent knows (the main job); exit 1 on any failure")
    p.add_argument("--json", action="store_true", help="print the results as JSON records")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--group", action="append", help="only the check groups whose name contains this (repeatable)")

    p = _add(sub, "examples", cmd_examples, "the worked examples of the source documents, recomputed, with verdicts")
    p.add_argument("--json", action="store_true", help="print JSON records")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UserError as exc:
        print(f"symxent: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `symxent examples | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
