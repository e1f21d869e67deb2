"""nbval settings for the lecture notebooks (``pytest --nbval derivations/``).

- ``stderr`` is not compared: warnings from third-party libraries vary between versions and machines.
- The sanitize patterns of ``nbval_sanitize.cfg`` (next to this file) always apply, so the plain
  command needs no ``--nbval-sanitize-with``.

PNG images are not compared by nbval (without ``--nbdime``); the figures' text form, such as
``<Figure size 576x324 with 1 Axes>``, is.
"""
from pathlib import Path

SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        from nbval.plugin import get_sanitize_patterns

        collector.skip_compare += ("stderr",)
        collector.sanitize_patterns.update(get_sanitize_patterns(SANITIZE_FILE.read_text()))
