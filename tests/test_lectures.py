"""`symxent lectures build`: a page and slides per notebook, the index, links that resolve, math that
works offline (MathJax bundled and loaded by a relative path), reveal.js structure; the slide metadata
of the notebooks (derivations/slides.py)."""
import contextlib
import html.parser
import importlib.util
import io
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from symxent import lectures
from symxent.cli import main

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ROOT / "derivations"
NOTEBOOKS = sorted(DERIVATIONS.glob(lectures.NOTEBOOK_GLOB))


class _Attributes(html.parser.HTMLParser):
    """Every (tag, attribute, value) of a document (an independent reading of the links)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [(tag, name, value) for name, value in attrs if value is not None]


def attributes(path: Path) -> list:
    parser = _Attributes()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.found


def links(path: Path) -> set:
    return {value for _, name, value in attributes(path) if name in ("href", "src")}


def is_remote(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z]+:)?//", url))


def local_target(url: str) -> str:
    return re.split(r"[?#]", url, maxsplit=1)[0]


class Site:
    """A build of the lecture notebooks, with the notebooks there were when it started (other
    notebooks may appear while the tests run)."""

    def __init__(self, out: Path):
        self.notebooks = sorted(DERIVATIONS.glob(lectures.NOTEBOOK_GLOB))
        self.lectures = [p for p in self.notebooks if not p.stem.endswith(lectures.SOLUTIONS_SUFFIX)]
        self.out = out
        self.report = lectures.build(out, log=lambda line: None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return Site(tmp_path_factory.mktemp("lectures"))


def test_every_notebook_has_a_page_and_slides(site):
    out, notebooks = site.out, site.notebooks
    assert notebooks, "no lecture notebooks found"
    for notebook in notebooks:
        for name in (notebook.stem + ".html", notebook.stem + ".slides.html"):
            assert (out / name).stat().st_size > 10_000, name
    assert sorted(p.name for p in out.glob("*.html")) == sorted(
        ["index.html"] + [p.stem + ".html" for p in notebooks] + [p.stem + ".slides.html" for p in notebooks])


def test_index_lists_every_lecture_with_its_title_page_slides_and_solutions(site):
    out, notebooks, lecture_paths = site.out, site.notebooks, site.lectures
    index = out / "index.html"
    text, targets = index.read_text(encoding="utf-8"), links(index)
    for notebook in notebooks:
        assert notebook.stem + ".html" in targets and notebook.stem + ".slides.html" in targets, notebook.name
    for notebook in lecture_paths:
        title = lectures.title_of(nbformat.read(notebook, as_version=4), None)
        assert title and f">{html.escape(title)}</a>" in text, title


def test_every_internal_link_resolves(site):
    out, report = site.out, site.report
    assert report.broken == {}
    for page in out.glob("*.html"):
        for url in links(page):
            if is_remote(url) or url.startswith(("#", "data:", "mailto:")) or re.match(r"^[a-z]+:", url):
                continue
            assert (out / local_target(url)).exists(), f"{page.name} links to a missing {url}"


def test_each_page_links_to_the_index_its_slides_and_its_neighbours(site):
    out, lecture_paths = site.out, site.lectures
    for position, notebook in enumerate(lecture_paths):
        targets = links(out / (notebook.stem + ".html"))
        assert {"index.html", notebook.stem + ".slides.html"} <= targets
        if position > 0:
            assert lecture_paths[position - 1].stem + ".html" in targets
        if position + 1 < len(lecture_paths):
            assert lecture_paths[position + 1].stem + ".html" in targets
        solutions = DERIVATIONS / (notebook.stem + lectures.SOLUTIONS_SUFFIX + ".ipynb")
        if solutions.exists():
            assert solutions.stem + ".html" in targets
            assert notebook.stem + ".html" in links(out / (solutions.stem + ".html"))
        assert {"index.html", notebook.stem + ".html"} <= links(out / (notebook.stem + ".slides.html"))


def _first_inline_math(notebook: Path) -> str | None:
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for math in re.findall(r"(?<!\$)\$[^$\n]+\$(?!\$)", cell.source):
                if not re.search(r"[<>&`]", math):
                    return math
    return None


def test_pages_carry_the_math_and_load_mathjax_from_a_local_copy(site):
    out, notebooks = site.out, site.notebooks
    for notebook in notebooks:
        for name in (notebook.stem + ".html", notebook.stem + ".slides.html"):
            page = out / name
            text = page.read_text(encoding="utf-8")
            math = _first_inline_math(notebook)
            if math:
                assert math in text, f"{name}: {math} is not in the page"
            assert re.search(r"\$[^$<]+\$|\\\(", text), name
            scripts = [value for tag, attr, value in attributes(page) if tag == "script" and attr == "src"]
            mathjax = [src for src in scripts if "mathjax" in src.lower()]
            assert mathjax, f"{name} loads no MathJax"
            for src in mathjax:
                assert not is_remote(src), f"{name} loads MathJax from the network: {src}"
                assert (out / local_target(src)).is_file(), src
    assert (out / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (out / "mathjax" / "fonts" / "HTML-CSS" / "STIX-Web").is_dir()


def test_nothing_is_loaded_from_the_network_except_an_unbundled_reveal(site):
    out, report = site.out, site.report
    for page in out.glob("*.html"):
        loaded = [value for tag, attr, value in attributes(page)
                  if (attr == "src") or (tag == "link" and attr == "href")]
        remote = [url for url in loaded if is_remote(url)] + lectures.remote_resources(page.read_text("utf-8"))
        unbundled = () if report.reveal_bundled else (report.reveal,)
        assert [url for url in remote if not url.startswith(unbundled or ("//",))] == [], (page.name, remote)
        text = page.read_text(encoding="utf-8")
        assert "require.min.js" not in text and "jquery.min.js" not in text and "mermaid.esm" not in text


def test_slides_have_reveal_structure_and_a_slide_per_heading(site):
    out, report, notebooks = site.out, site.report, site.notebooks
    for notebook in notebooks:
        text = (out / (notebook.stem + ".slides.html")).read_text(encoding="utf-8")
        assert '<div class="reveal">' in text and '<div class="slides">' in text
        types = [cell.metadata.get("slideshow", {}).get("slide_type") or lectures.slide_type(cell)
                 for cell in nbformat.read(notebook, as_version=4).cells]
        assert types[0] == "slide"
        # nbconvert: a <section> per slide around a <section> per subslide (a slide's first included)
        assert text.count("<section") == 2 * types.count("slide") + types.count("subslide"), notebook.name
        prefix = report.reveal
        assert f'src="{prefix}/dist/reveal.js"' in text and f"{prefix}/dist/reveal.css" in text
    if report.reveal_bundled:
        assert (out / report.reveal / "dist" / "reveal.js").is_file()
        assert (out / report.reveal / "plugin" / "notes" / "notes.js").is_file()
        assert (out / report.reveal / "dist" / "theme" / "simple.css").is_file()


# --- small notebooks: solutions, no slide metadata, reveal.js options ---------------------------

def _notebook(*cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _latex_cell(source, latex):
    return new_code_cell(source, execution_count=1, outputs=[
        new_output("display_data", data={"text/latex": latex, "text/plain": source})])


@pytest.fixture
def small(tmp_path):
    directory = tmp_path / "nb"
    directory.mkdir()
    nbformat.write(_notebook(new_markdown_cell("# 1. First lecture\n\nInformation $I(p) = -\\log p$."),
                             _latex_cell("x", "$\\displaystyle x^{2}$"),
                             new_markdown_cell("## 1.1 More\n\nSee [lecture 2](02_second.ipynb#top)."),
                             new_markdown_cell("### Detail")), directory / "01_first.ipynb")
    nbformat.write(_notebook(new_markdown_cell("# 1. Solutions\n\n$a + b$")), directory / "01_first_solutions.ipynb")
    nbformat.write(_notebook(new_markdown_cell("# 2. Second lecture\n\n$\\sum_j p_j = 1$")),
                   directory / "02_second.ipynb")
    return directory


def _run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def test_solutions_are_linked_and_notebooks_without_metadata_get_slides(small, tmp_path):
    out = tmp_path / "site"
    status, stdout, _ = _run_cli(["lectures", "build", str(out), "--notebooks", str(small), "--quiet"])
    assert status == 0, stdout
    index = links(out / "index.html")
    assert {"01_first.html", "01_first.slides.html", "01_first_solutions.html", "02_second.html"} <= index
    assert {"01_first_solutions.html", "02_second.html", "index.html"} <= links(out / "01_first.html")
    assert {"01_first.html", "02_second.html", "index.html"} <= links(out / "01_first_solutions.html")
    assert "01_first.html" in links(out / "02_second.html")
    assert "02_second.html#top" in links(out / "01_first.html")      # a link to a notebook goes to its page
    slides = (out / "01_first.slides.html").read_text(encoding="utf-8")
    assert slides.count("<section") == 2 * 2 + 1                       # '#', '##' slides and a '###' subslide
    assert "I(p) = -\\log p" in (out / "01_first.html").read_text(encoding="utf-8")
    assert "x^{2}" in (out / "01_first.html").read_text(encoding="utf-8")
    for name in ("01_first.ipynb", "02_second.ipynb"):            # the build wrote nothing into the notebooks
        assert all("slideshow" not in c.metadata for c in nbformat.read(small / name, as_version=4).cells)


def test_without_a_local_reveal_the_slides_use_the_cdn_and_say_so(small, tmp_path, monkeypatch):
    monkeypatch.setattr(lectures, "reveal_source", lambda: None)
    out = tmp_path / "site"
    status, stdout, _ = _run_cli(["lectures", "build", str(out), "--notebooks", str(small), "--quiet"])
    assert status == 0
    assert lectures.OFFLINE_HINT in stdout
    assert lectures.OFFLINE_HINT in (out / "index.html").read_text(encoding="utf-8")
    assert f'src="{lectures.REVEAL_CDN}/dist/reveal.js"' in (out / "02_second.slides.html").read_text("utf-8")
    assert not (out / "reveal.js").exists()
    assert lectures.remote_resources((out / "02_second.html").read_text("utf-8")) == []


def test_reveal_prefix_takes_a_url_or_copies_a_local_reveal(small, tmp_path):
    local = tmp_path / "my-reveal"
    for relative in ("dist/reveal.js", "dist/reveal.css", "dist/theme/simple.css", "plugin/notes/notes.js"):
        (local / relative).parent.mkdir(parents=True, exist_ok=True)
        (local / relative).write_text("/* stand-in */")
    out = tmp_path / "site"
    status, stdout, _ = _run_cli(["lectures", "build", str(out), "--notebooks", str(small), "--quiet",
                                  "--reveal-prefix", str(local)])
    assert status == 0 and lectures.OFFLINE_HINT not in stdout
    assert (out / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()
    assert 'src="reveal.js/dist/reveal.js"' in (out / "01_first.slides.html").read_text("utf-8")

    url = "https://example.org/reveal.js@5"
    status, stdout, _ = _run_cli(["lectures", "build", str(tmp_path / "site2"), "--notebooks", str(small),
                                  "--quiet", "--reveal-prefix", url])
    assert status == 0 and lectures.OFFLINE_HINT in stdout
    assert f'src="{url}/dist/reveal.js"' in (tmp_path / "site2" / "01_first.slides.html").read_text("utf-8")

    status, _, stderr = _run_cli(["lectures", "build", str(tmp_path / "site3"), "--notebooks", str(small),
                                  "--reveal-prefix", str(tmp_path / "nothing")])
    assert status == 2 and "reveal.js directory" in stderr


def test_a_link_to_a_file_outside_the_site_is_reported_with_exit_1(small, tmp_path):
    nbformat.write(_notebook(new_markdown_cell("# 3. Third\n\nSee [the README](../README.md).")),
                   small / "03_third.ipynb")
    status, stdout, _ = _run_cli(["lectures", "build", str(tmp_path / "site"), "--notebooks", str(small), "--quiet"])
    assert status == 1 and "WARNING: 03_third.html links to files that are not in the output: ../README.md" in stdout


def test_a_missing_notebook_directory_is_a_clear_error(tmp_path):
    status, _, stderr = _run_cli(["lectures", "build", str(tmp_path / "out"), "--notebooks", str(tmp_path / "no")])
    assert status == 2 and "notebook directory not found" in stderr
    (tmp_path / "empty").mkdir()
    status, _, stderr = _run_cli(["lectures", "build", str(tmp_path / "out"), "--notebooks", str(tmp_path / "empty")])
    assert status == 2 and "no notebooks NN_*.ipynb" in stderr


def test_the_default_notebooks_are_this_clones_derivations():
    assert lectures.default_notebooks_dir() == DERIVATIONS


def test_help_documents_the_offline_options():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["lectures", "build", "--help"])
    text = " ".join(out.getvalue().split())
    assert "--reveal-prefix" in text and "--notebooks" in text and "need internet for reveal.js" in text


# --- the slide metadata -------------------------------------------------------------------------

def _slides_script():
    spec = importlib.util.spec_from_file_location("derivations_slides", DERIVATIONS / "slides.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("source, cell_type, expected", [
    ("# 1. Title", "markdown", "slide"), ("## 1.1 Part\ntext", "markdown", "slide"),
    ("\n### Detail", "markdown", "subslide"), ("#### Small", "markdown", "-"), ("#hashtag", "markdown", "-"),
    ("Text with # inside", "markdown", "-"), ("# a comment", "code", "-"),
])
def test_the_slide_rule(source, cell_type, expected):
    cell = new_markdown_cell(source) if cell_type == "markdown" else new_code_cell(source)
    assert lectures.slide_type(cell) == expected


def test_slides_script_sets_the_rule_keeps_outputs_and_is_idempotent(tmp_path):
    script = _slides_script()
    path = tmp_path / "01_x.ipynb"
    nb = _notebook(new_markdown_cell("# Title"), _latex_cell("y", "$y$"), new_markdown_cell("### Sub"))
    nb.cells[1].metadata["slideshow"] = {"slide_type": "fragment"}     # replaced: the rule never uses fragments
    nb.cells[1].metadata["tags"] = ["kept"]
    nbformat.write(nb, path)
    assert script.apply(path) == 3
    after = nbformat.read(path, as_version=4)
    assert [c.metadata["slideshow"]["slide_type"] for c in after.cells] == ["slide", "-", "subslide"]
    assert after.cells[1].outputs == nb.cells[1].outputs and after.cells[1].metadata["tags"] == ["kept"]
    written = path.read_bytes()
    assert script.apply(path) == 0 and path.read_bytes() == written


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_slide_metadata_on_every_cell(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    wrong = [(i, cell.metadata.get("slideshow", {}).get("slide_type"), lectures.slide_type(cell))
             for i, cell in enumerate(cells)
             if cell.metadata.get("slideshow", {}).get("slide_type") != lectures.slide_type(cell)]
    assert not wrong, (f"{notebook.name}: cells (index, slide type, by the rule) {wrong[:5]}"
                       f"{' ...' if len(wrong) > 5 else ''}: run `python derivations/slides.py {notebook.stem}`")


# --- one page in a headless browser (where one is installed) ------------------------------------

def _browser():
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed (apt-get install chromium-headless-shell)")
def test_a_page_renders_its_math_offline_in_a_browser(site):
    out, lecture_paths = site.out, site.lectures
    page = out / (lecture_paths[0].stem + ".html")
    run = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=30000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = run.stdout
    sources = re.findall(r'<script type="math/tex[^"]*" id="MathJax-Element-(\d+)"', dom)
    rendered = re.findall(r'id="MathJax-Element-(\d+)-Frame"', dom)
    assert sources, f"MathJax did not run (rc {run.returncode}): {run.stderr[-500:]}"
    assert sorted(rendered) == sorted(sources)
    assert 'class="MathJax_Error"' not in dom and "Math Processing Error" not in dom
    assert "STIXMathJax" in dom                     # the bundled web fonts, configured by the page
