"""Packaging and start-up: the package list is complete and the light entry points never import torch."""
import pathlib
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config.get("package-dir", {})
    found = set()
    for name, directory in [("symxent", "symxent"), *[(k, v) for k, v in mapping.items()]]:
        for init in (ROOT / directory).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / directory)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


def _imports_torch(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_import_symxent_does_not_import_torch():
    assert not _imports_torch("import symxent")


def test_cli_help_does_not_import_torch():
    assert not _imports_torch("import contextlib, io\nfrom symxent.cli import main\n"
                              "with contextlib.redirect_stdout(io.StringIO()):\n    main([])")


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-m", "symxent", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "verify" in out.stdout


def test_generating_c_code_does_not_import_torch():
    """Only the torch target loads SymPy's torch printer (which imports torch)."""
    assert not _imports_torch("import symxent.codegen as g\ng.generate('cross_entropy', 'c')\n"
                              "g.generate('softmax', 'numpy')")


def test_the_lazy_top_level_names_are_the_catalogues():
    """symxent's attributes load on first use (PEP 562); the list of names matches the catalogue's."""
    import types

    import symxent
    import symxent.definitions as definitions
    modules = {name for name in definitions.__all__ if isinstance(getattr(definitions, name), types.ModuleType)}
    assert set(symxent._DEFINITIONS) == set(definitions.__all__) - modules
    assert symxent.softmax is definitions.softmax and symxent.Loss.__name__ == "Loss"
    with pytest.raises(AttributeError):
        symxent.no_such_name  # noqa: B018
