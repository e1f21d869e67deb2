"""The ``symxent`` command line: a thin layer over the library.

Each subcommand parses its arguments, calls the plain Python API, and prints a table or JSON.
Exit status: 0 success, 1 a check failed / a claim was refuted, 2 bad input, 3 unknown (``prove``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


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


def _show_as_json_or_latex(args, result) -> bool:
    """Print a derivation or verdict as JSON (``--json``) or LaTeX (``--latex``); False if neither was asked."""
    if args.json:
        _print_json(result.to_dict())
    elif args.latex:
        print(result.latex())
    return bool(args.json or args.latex)


def _print_steps(steps, indent: str) -> None:
    for step in steps:
        shown = getattr(step, "shown", step.expr)  # a proof's steps: readable bound indices
        print(f"{indent}{step.explanation}:\n{indent}    {shown}")


# --- subcommands ----------------------------------------------------------------------------

def _indented(label: str, text: str, indent: str = "    ") -> str:
    """``label: text`` with the continuation lines of a multi-line ``text`` indented under it."""
    return f"{indent}{label}: " + text.replace("\n", "\n" + indent + " " * (len(label) + 2))


def cmd_examples(args) -> int:
    """The worked examples of the source articles with their verdicts, the passages and the sources."""
    from .examples.check import run_examples
    from .examples.documents import SOURCES

    results = run_examples()
    if args.json:
        _print_json([r.to_dict() for r in results])
        return 0
    rows = [(r.source, _shorten(r.example, 28), _shorten(r.quantity, 28), _shorten(r.stated, 14),
             _shorten(r.computed, 16), r.verdict) for r in results]
    print(table(rows, ["source", "example", "quantity", "stated", "computed", "verdict"]))
    counts = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    print("\n" + ", ".join(f"{v}: {c}" for v, c in sorted(counts.items())) + f" ({len(results)} values)")
    shown = results if args.passages else [r for r in results if r.verdict != "agrees" and r.note]
    if shown:
        print("\nPassages:" if args.passages else "\nNotes:")
        for r in shown:
            print(f"- {r.source} / {r.example} / {r.quantity} [{r.verdict}]" + (f": {r.note}" if r.note else ""))
            print(_indented("passage", r.passage))
            print(_indented("translation", r.translation))
    print("\nSources:")
    for source in SOURCES.values():
        print(f"- {source.citation()}")
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
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[result.status]
        stream.write(f"[{index:3d}/{total}] {mark} {result.group}: {result.name} ({result.seconds:.2f} s)\n")
        if result.ok is not True:
            stream.write(f"           {result.detail}\n")
        stream.flush()

    results = run_all(checks, progress)
    elapsed = time.perf_counter() - start
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        groups = {}
        for r in results:
            g = groups.setdefault(r.group, {"passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0})
            g[r.status] += 1
            g["seconds"] += r.seconds
        rows = [(name, g["passed"], g["failed"], g["skipped"], f"{g['seconds']:.2f}") for name, g in groups.items()]
        print(table(rows, ["group", "passed", "failed", "skipped", "seconds"]))
        for r in results:
            if r.ok is not True:
                print(f"{r.status.upper()} {r.group}: {r.name}: {r.detail}")
        counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "skipped")}
        print(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped in {elapsed:.1f} s")
    return 1 if any(r.ok is False for r in results) else 0


def cmd_derive(args) -> int:
    """A registered derivation: its steps and the gradient (or the list of names)."""
    from .derive import DERIVATIONS

    if args.name is None or args.name == "list":
        rows = [(name, spec.title, spec.wrt) for name, spec in DERIVATIONS.items()]
        print(table(rows, ["name", "what", "by"]))
        return 0
    if args.name not in DERIVATIONS:
        raise UserError(f"unknown derivation {args.name!r}; choose one of: {', '.join(DERIVATIONS)}")
    try:
        derivation = DERIVATIONS[args.name].derive(wrt=args.wrt)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not _show_as_json_or_latex(args, derivation):
        _print_steps(derivation.steps, indent="")
        print(f"\nresult ({derivation.seconds:.3f} s):\n    {derivation.named_result}")
    return 0


PROVE_EXIT = {"proved": 0, "proved_concrete": 0, "refuted": 1, "unknown": 3}
#: an internal error (a symbolic proof the numbers contradict: a bug in symxent)
INTERNAL_ERROR_EXIT = 4


def cmd_prove(args) -> int:
    """Prove or refute ``LHS relation RHS`` (formulas through the safe parser, never evaluated)."""
    from .prove import FormulaError, prove

    try:
        verdict = prove(args.lhs, args.rhs, assumptions=args.assume, n=args.n, relation=args.relation,
                        timeout=args.timeout, memory=args.memory * 2**20)
    except FormulaError as exc:
        raise UserError(f"bad formula: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    if not _show_as_json_or_latex(args, verdict):
        checked = f", checked at {verdict.checked_points} points" if verdict.checked_points else ""
        print(f"{verdict.status} ({verdict.method}{checked}, {verdict.seconds:.3f} s)")
        _print_steps(verdict.steps, indent="  ")
        if verdict.counterexample:
            print("counterexample (a point of the domain; both sides by mpmath and SymPy, 50 digits):")
            for key, value in verdict.counterexample.items():
                print(f"  {key} = {value}")
        if verdict.internal_error:
            print("INTERNAL ERROR: the symbolic steps reached a proof that the numbers contradict at:", file=sys.stderr)
            for key, value in verdict.internal_error.items():
                print(f"  {key} = {value}", file=sys.stderr)
            print("This is a bug in symxent: please report it with the command above.", file=sys.stderr)
    return INTERNAL_ERROR_EXIT if verdict.internal_error else PROVE_EXIT[verdict.status]


def cmd_identities(args) -> int:
    """The identity catalogue, each proved or refuted now; exit 1 if a verdict is not the expected one."""
    from .prove import check_all

    results = check_all()
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        rows = []
        for r in results:
            d = r.to_dict()
            rows.append((d["name"], d["expected"], d["status"], f"{d['seconds']:.3f}", "ok" if r.ok else "MISMATCH"))
        print(table(rows, ["name", "expected", "status", "seconds", ""]))
        proved = sum(1 for r in results if r.to_dict()["status"] == "proved")
        refuted = sum(1 for r in results if r.to_dict()["status"] == "refuted")
        print(f"\n{proved} proved for general n, {refuted} refuted with counterexamples, {len(results)} in all")
    return 0 if all(r.ok for r in results) else 1


def _codegen_root():
    import symxent_codegen

    return Path(symxent_codegen.__file__).resolve().parent


def cmd_codegen(args) -> int:
    """Print or write generated code; ``--all --check`` fails on drift of the checked-in codegen/."""
    from . import codegen

    if args.all:
        root = Path(args.output) if args.output else _codegen_root()
        paths = codegen.write_all(root, check=args.check)
        if args.check:
            for path in paths:
                print(f"drift: {path} differs from what the generator produces now")
            print(f"{len(paths)} generated file(s) out of date under {root}" if paths
                  else f"codegen up to date under {root}")
            return 1 if paths else 0
        print(f"wrote {len(paths)} file(s) under {root}" if paths else f"nothing to write: {root} is up to date")
        return 0
    known = codegen.kernels_for(args.target)
    if args.name is None:
        print("losses: " + ", ".join(known))
        return 0
    if args.name not in known:
        raise UserError(f"unknown loss {args.name!r} for target {args.target}; known: {', '.join(known)}")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for filename, text in codegen.generate_files(args.name, args.target).items():
            (out / filename).write_text(text)
            print(f"wrote {out / filename}")
    else:
        print(codegen.generate(args.name, args.target))
    return 0


# --- lectures (the logic is in symxent/lectures.py) -------------------------------------------

def cmd_lectures(args) -> int:
    """``symxent lectures build OUTDIR``: every lecture notebook as an HTML page and reveal.js slides."""
    from .lectures import LecturesError, build

    try:
        report = build(args.outdir, notebooks=args.notebooks, reveal_prefix=args.reveal_prefix,
                       log=(lambda line: None) if args.quiet else print)
    except LecturesError as exc:
        raise UserError(str(exc)) from None
    solutions = sum(1 for lecture in report.lectures if lecture.solutions)
    print(f"{len(report.lectures)} lectures ({solutions} with solutions): open {report.outdir / 'index.html'}")
    print(f"MathJax: bundled in {report.outdir / 'mathjax'}; reveal.js: "
          + (f"bundled in {report.outdir / report.reveal}" if report.reveal_bundled else f"from {report.reveal}"))
    for line in report.notes:
        print(line)
    return 1 if report.broken else 0


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

    p = _add(sub, "examples", cmd_examples, "the worked examples of the source articles, recomputed, with verdicts")
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.add_argument("--passages", action="store_true",
                   help="print every example's passage (verbatim) and translation, not only those with a note")
    p = _add(sub, "derive", cmd_derive, "derive a gradient for general n, step by step (no NAME: list them)")
    p.add_argument("name", nargs="?", help="a registered derivation, e.g. ce_index (omit to list them)")
    p.add_argument("--wrt", help="the variable to differentiate by (default: the entry's own)")
    p.add_argument("--latex", action="store_true", help="print the steps as a LaTeX align* block")
    p.add_argument("--json", action="store_true", help="print the derivation as JSON")
    p = _add(sub, "prove", cmd_prove, "prove LHS == RHS for general n, or refute it with a counterexample "
                                       "(exit 0 proved, 1 refuted, 3 unknown, 2 bad input, 4 internal error)")
    p.add_argument("lhs", help='left side, e.g. "-log(softmax(z)[c])"')
    p.add_argument("rhs", help='right side, e.g. "logsumexp(z) - z[c]"')
    p.add_argument("--n", type=int, help="a concrete number of classes: every vector has n elements (default: "
                                         "general n)")
    p.add_argument("--relation", choices=["==", ">=", "<="], default="==", help="the claim (default ==)")
    p.add_argument("--assume", action="append", default=[], metavar="FACT",
                   help='a domain, repeatable: "p: distribution" (or real, logits, positive, nonnegative, '
                        'weights, probability, labels), "0 <= eps <= 1", "x > 0"; replaces the natural domain '
                        "of that name (entropy(p): p a distribution; label_smoothing: [0, 1]; ...)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="give up with 'unknown (limit: time)' after this long (default 10)")
    p.add_argument("--memory", type=int, default=1024, metavar="MB",
                   help="give up with 'unknown (limit: memory)' beyond this much more memory (default 1024)")
    p.add_argument("--latex", action="store_true", help="print the steps as LaTeX")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")

    p = _add(sub, "identities", cmd_identities, "the identity catalogue with verdicts and times")
    p.add_argument("--json", action="store_true", help="print JSON records")
    from .codegen.driver import TARGETS  # the generator's registry (the choices follow it)
    p = _add(sub, "codegen", cmd_codegen, "print or write the generated code of a loss; --all --check tests for drift")
    p.add_argument("name", nargs="?", help="a loss of the catalogue, e.g. cross_entropy (omit to list them)")
    p.add_argument("--target", default="numpy", choices=list(TARGETS), help="default numpy")
    p.add_argument("-o", "--output", help="write the file(s) into this directory instead of printing")
    p.add_argument("--all", action="store_true", help="every loss for every target, into the checked-in codegen/")
    p.add_argument("--check", action="store_true", help="with --all: write nothing, exit 1 if any file would change")

    p = _add(sub, "lectures", cmd_lectures, "the lecture notebooks as a static site: HTML pages and reveal.js slides")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="write OUTDIR/index.html, a page and slides per notebook",
                           description="Export every notebook derivations/NN_*.ipynb (solutions included) as an "
                           "HTML page and reveal.js slides, with outputs as committed (nothing is re-executed), "
                           "and OUTDIR/index.html listing them. MathJax is copied into OUTDIR (offline). reveal.js "
                           "is copied too when the sphinx-revealjs package is installed; otherwise the slides need "
                           "internet for reveal.js, or pass --reveal-prefix to a local copy. Exit 1 if a page "
                           "links to a file the build did not write.")
    b.add_argument("outdir", metavar="OUTDIR", help="the output directory (created; files in it are overwritten)")
    b.add_argument("--notebooks", metavar="DIR", help="the notebook directory (default: derivations/ of this clone)")
    b.add_argument("--reveal-prefix", metavar="URL_OR_DIR",
                   help="where the slides load reveal.js from: a URL (used as given), or a local reveal.js "
                        "directory with dist/reveal.js (copied into OUTDIR/reveal.js)")
    b.add_argument("--quiet", action="store_true", help="no line per written file")
    return parser


def _protect_formulas(argv: list, parser: argparse.ArgumentParser) -> list:
    """Let formulas start with '-' (``symxent prove "-log(softmax(z)[c])" ...``): every argument of a
    subcommand that is not one of its options is passed after ``--``, so argparse reads it as positional."""
    if not argv or argv[0] != "prove" or "--" in argv:
        return argv
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[argv[0]]
    takes_value = {s: a.nargs != 0 for a in sub._actions for s in a.option_strings}
    options, positionals, rest = [], [], iter(argv[1:])
    for arg in rest:
        name = arg.split("=", 1)[0]
        if name in takes_value:
            options.append(arg)
            if takes_value[name] and "=" not in arg:
                options.append(next(rest, ""))
        else:
            positionals.append(arg)
    return [argv[0], *options, "--", *positionals]


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_protect_formulas(argv, parser))
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
