"""Write the slide metadata of the lecture notebooks, for the reveal.js slides of `symxent lectures build`.

    python derivations/slides.py                 # every NN_*.ipynb here (solutions included)
    python derivations/slides.py 04_gradients    # some of them
    python derivations/slides.py --check         # write nothing; exit 1 if a notebook would change

The rule (``symxent.lectures.slide_type``), for each cell's ``metadata.slideshow.slide_type``:

- a markdown cell whose first line is a ``#`` or ``##`` heading: ``"slide"`` (a new slide);
- a markdown cell whose first line is a ``###`` heading: ``"subslide"`` (a new slide below the last one);
- every other cell: ``"-"`` (it continues the current slide); ``"fragment"`` is never used.

Only that metadata changes: outputs, sources and all other metadata are kept, and a notebook that
already follows the rule is not rewritten, so running it twice changes nothing. Run it after adding or
re-heading cells (tests/test_lectures.py checks every cell against the rule); no re-execution is needed,
since nbval compares outputs only.
"""
import sys
from pathlib import Path

import nbformat

from symxent.lectures import set_slide_types

HERE = Path(__file__).resolve().parent


def apply(path: Path, write: bool = True) -> int:
    """The number of cells whose slide type changes (written back when ``write``)."""
    notebook = nbformat.read(path, as_version=4)
    changed = set_slide_types(notebook)
    if changed and write:
        nbformat.write(notebook, path)
    return changed


if __name__ == "__main__":
    args = sys.argv[1:]
    check = "--check" in args
    names = [a for a in args if a != "--check"] or sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.ipynb"))
    stale = 0
    for name in names:
        changed = apply(HERE / f"{name}.ipynb", write=not check)
        stale += bool(changed)
        verb = "would change" if check else "changed"
        print(f"{name}.ipynb: {verb} {changed} cell(s)" if changed else f"{name}.ipynb: up to date")
    sys.exit(1 if check and stale else 0)
