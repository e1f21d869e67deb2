"""Re-execute the lecture notebooks in place, so that their committed outputs match the library.

    python derivations/execute.py                 # every NN_*.ipynb here
    python derivations/execute.py 04_gradients    # some of them

Run it after a change that alters what a notebook prints, then commit the notebooks: CI's nbval
run compares the committed outputs strictly. No timing metadata is written.
"""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(notebook, path)
    print(f"executed {path.name}")


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.ipynb"))
    for name in names:
        execute(HERE / f"{name}.ipynb")
