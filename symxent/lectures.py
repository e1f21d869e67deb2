"""The lecture notebooks as a static site: ``symxent lectures build OUTDIR``.

For every notebook ``derivations/NN_*.ipynb`` (the ``NN_*_solutions.ipynb`` companions included) the
build writes

- ``OUTDIR/NN_name.html``: the notebook as a page (nbconvert's ``HTMLExporter``, ``lab`` template), with
  the outputs as committed: nothing is re-executed;
- ``OUTDIR/NN_name.slides.html``: the notebook as reveal.js slides (nbconvert's ``SlidesExporter``);
- ``OUTDIR/index.html``: every lecture (its title is the notebook's first heading) with links to its
  page, its slides and its solutions where there are some.

Each page links to the index, to its slides, to its solutions (or, on a solutions page, to its lecture)
and to the previous and next lecture; each slide deck links to the index and to its page.

Offline use (a classroom without internet). What nbconvert's templates would fetch, and what the build
does with it:

- MathJax 2: copied into ``OUTDIR/mathjax`` from the ``jupyter-server-mathjax`` package (MathJax 2.7.9,
  with its STIX-Web fonts only, so the pages configure MathJax to use those) and loaded by a relative URL.
- reveal.js (slides only): copied into ``OUTDIR/reveal.js`` from the ``sphinx-revealjs`` package when it
  is installed (reveal.js 5); otherwise the slides load nbconvert's default from a CDN and need internet,
  and the build says so. ``reveal_prefix`` (``--reveal-prefix``) takes a URL, or a local reveal.js
  directory (one with ``dist/reveal.js``), which is copied into ``OUTDIR/reveal.js``.
- require.js and jQuery: not loaded. The lecture outputs have no JavaScript or widget outputs that need
  require.js, and the slides start reveal.js with plain ``<script>`` tags (no require.js, no jQuery).
- mermaid (diagrams in markdown) and Jupyter widgets: not loaded (the lectures use neither).
- fonts: the page CSS of nbconvert's ``lab`` template uses the system's fonts; reveal.js's theme fonts
  come with reveal.js.

``remote_resources`` lists what an exported file still loads from the network; the build reports it.

Slides: a cell's ``metadata.slideshow.slide_type`` decides where slides start; ``slide_type(cell)`` is
the rule (``derivations/slides.py`` writes it into the notebooks). Cells without that metadata get the
rule at build time (in memory: the notebooks are not changed).
"""
from __future__ import annotations

import copy
import html
import importlib.util
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
SOLUTIONS_SUFFIX = "_solutions"
MATHJAX_DIR = "mathjax"
MATHJAX_URL = MATHJAX_DIR + "/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
REVEAL_DIR = "reveal.js"
#: nbconvert's default reveal.js (SlidesExporter.reveal_url_prefix), used when no local copy is available
REVEAL_CDN = "https://unpkg.com/reveal.js@4.0.2"
OFFLINE_HINT = "slides need internet for reveal.js, or pass --reveal-prefix to a local copy"


class LecturesError(Exception):
    """The notebooks or a needed package cannot be found: reported in one line."""


# --- the slide rule ---------------------------------------------------------------------------

def slide_type(cell) -> str:
    """The slide type of a cell: a markdown cell whose first line is a ``#`` or ``##`` heading starts a
    slide, a ``###`` heading a subslide; every other cell is ``"-"`` (it continues the current one).
    ``"fragment"`` is never used (every cell shows at once)."""
    if cell.get("cell_type") == "markdown":
        first = cell.get("source", "").lstrip().split("\n", 1)[0]
        level = len(first) - len(first.lstrip("#"))
        if first[level:level + 1] in (" ", "\t") or first[level:] == "":
            if level in (1, 2):
                return "slide"
            if level == 3:
                return "subslide"
    return "-"


def set_slide_types(notebook, overwrite: bool = True) -> int:
    """Set ``metadata.slideshow.slide_type`` of every cell by ``slide_type``; with ``overwrite=False``
    only cells that have none. Returns the number of cells changed; outputs are not touched."""
    changed = 0
    for cell in notebook.cells:
        slideshow = cell.metadata.get("slideshow", {})
        if "slide_type" in slideshow and not overwrite:
            continue
        wanted = slide_type(cell)
        if slideshow.get("slide_type") != wanted:
            cell.metadata["slideshow"] = {**slideshow, "slide_type": wanted}
            changed += 1
    return changed


# --- the notebooks ----------------------------------------------------------------------------

def default_notebooks_dir() -> Path:
    """``derivations/`` of the clone this package runs from (an editable install), else of the
    current directory."""
    candidates = [Path(__file__).resolve().parents[1] / "derivations", Path.cwd() / "derivations"]
    for directory in candidates:
        if any(directory.glob(NOTEBOOK_GLOB)):
            return directory
    raise LecturesError("no lecture notebooks found: derivations/NN_*.ipynb is neither next to the symxent "
                        f"package ({candidates[0].parent}) nor in the current directory; run from a clone "
                        "with `pip install -e .`, or pass --notebooks DIR")


def title_of(notebook, fallback: str) -> str:
    """The text of the notebook's first markdown heading."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or fallback
    return fallback


@dataclass
class Lecture:
    """One notebook and where its exports go (file names relative to OUTDIR)."""
    path: Path
    title: str
    solutions_of: str | None = None          # the lecture's stem, for a *_solutions notebook
    solutions: "Lecture | None" = None       # the companion, for a lecture that has one

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def page(self) -> str:
        return self.stem + ".html"

    @property
    def slides(self) -> str:
        return self.stem + ".slides.html"


def find_lectures(directory: Path) -> list[Lecture]:
    """The lectures in order, each with its solutions companion attached (a companion without its
    lecture is listed as a lecture of its own)."""
    import nbformat

    directory = Path(directory)
    if not directory.is_dir():
        raise LecturesError(f"notebook directory not found: {directory}")
    paths = sorted(directory.glob(NOTEBOOK_GLOB))
    if not paths:
        raise LecturesError(f"no notebooks NN_*.ipynb in {directory}")
    notebooks = {p.stem: Lecture(p, title_of(nbformat.read(p, as_version=4), p.stem)) for p in paths}
    lectures = []
    for stem, item in notebooks.items():
        base = stem[: -len(SOLUTIONS_SUFFIX)] if stem.endswith(SOLUTIONS_SUFFIX) else None
        if base is not None and base in notebooks:
            item.solutions_of = base
            notebooks[base].solutions = item
        else:
            lectures.append(item)
    return lectures


# --- the bundled assets -----------------------------------------------------------------------

def _package_dir(name: str) -> Path | None:
    """A package's directory without importing it (sphinx_revealjs would import Sphinx)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def mathjax_source() -> Path:
    directory = _package_dir("jupyter_server_mathjax")
    source = directory / "static" if directory else None
    if source is None or not (source / "MathJax.js").is_file():
        raise LecturesError("MathJax not found: install the 'jupyter-server-mathjax' package "
                            "(pip install -e '.[lectures]')")
    return source


def reveal_source() -> Path | None:
    """reveal.js as shipped by the ``sphinx-revealjs`` package, if installed."""
    directory = _package_dir("sphinx_revealjs")
    source = directory / "_static" / "revealjs" if directory else None
    return source if source is not None and (source / "dist" / "reveal.js").is_file() else None


def _copy_reveal(source: Path, target: Path) -> None:
    """What the slides load: dist/ (reveal.js, its CSS, the themes and their fonts) and the notes plugin."""
    ignore = shutil.ignore_patterns("*.map", "*.esm.js")
    shutil.copytree(source / "dist", target / "dist", ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(source / "plugin" / "notes", target / "plugin" / "notes", ignore=ignore, dirs_exist_ok=True)
    if (source / "LICENSE").is_file():
        shutil.copy2(source / "LICENSE", target / "LICENSE")


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text))


# --- the templates (nbconvert's, with the changes above) --------------------------------------

_MATHJAX_FONTS = """{{ super() }}
<script type="text/x-mathjax-config">
// the bundled MathJax (jupyter-server-mathjax) has the STIX-Web fonts only
MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}},
  SVG: {font: "STIX-Web"}
});
</script>"""

_NAV_CSS = """<style type="text/css">
nav.symxent-nav { font-family: sans-serif; font-size: 14px; padding: 6px 12px; display: flex;
                  flex-wrap: wrap; gap: 16px; border-bottom: 1px solid #ddd; }
nav.symxent-nav.bottom { border-bottom: none; border-top: 1px solid #ddd; }
nav.symxent-nav.slides { position: fixed; top: 4px; left: 8px; z-index: 100; border: none;
                         font-size: 13px; opacity: 0.6; }
</style>"""

PAGE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}""" + _MATHJAX_FONTS + """{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}""" + _NAV_CSS + """{%- endblock html_head_css -%}
{%- block body_header -%}{{ super() }}
<nav class="symxent-nav top">{{ resources.symxent_nav }}</nav>
{%- endblock body_header -%}
{% block body_footer %}<nav class="symxent-nav bottom">{{ resources.symxent_nav }}</nav>
{{ super() }}{% endblock body_footer %}
"""

SLIDES_TEMPLATE = """{%- extends 'reveal/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}""" + _MATHJAX_FONTS + """{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}""" + _NAV_CSS + """{%- endblock html_head_css -%}
{% block body_footer %}
</div>
</div>
<nav class="symxent-nav slides">{{ resources.symxent_nav }}</nav>
</main>
</body>
{% endblock body_footer %}
{% block footer_js %}
{%- set prefix = resources.reveal.url_prefix -%}
<script src="{{ prefix }}/dist/reveal.js"></script>
<script src="{{ prefix }}/plugin/notes/notes.js"></script>
<script>
// nbconvert's start-up of reveal.js, with plain script tags instead of require.js, and without jQuery
Reveal.initialize({
    controls: true,
    progress: true,
    history: true,
    transition: "{{ resources.reveal.transition }}",
    slideNumber: "{{ resources.reveal.number }}",
    plugins: [RevealNotes],
    width: {{ resources.reveal.width | default('960', true) }},
    height: {{ resources.reveal.height | default('700', true) }},
});
Reveal.addEventListener('slidechanged', function () {
    if (window.MathJax && MathJax.Hub.getAllJax(Reveal.getCurrentSlide())) {
        MathJax.Hub.Rerender(Reveal.getCurrentSlide());
    }
});
// a slide taller than the screen scrolls (nbconvert's reveal_scroll)
function setScrollingSlide() {
    var h = document.querySelector('.reveal').offsetHeight * 0.95;
    var slide = Reveal.getCurrentSlide();
    if (slide && slide.scrollHeight > h) {
        slide.style.height = 'calc(95vh)';
        slide.style.overflowY = 'scroll';
        slide.style.marginTop = '20px';
    }
}
Reveal.addEventListener('ready', setScrollingSlide);
Reveal.addEventListener('slidechanged', setScrollingSlide);
</script>
{% endblock footer_js %}
"""


# --- links --------------------------------------------------------------------------------------

_NOTEBOOK_LINK = re.compile(r'href="((?:\./)?[0-9][0-9]_[^"/#?]*?)\.ipynb([#?][^"]*)?"')
_LOADED = re.compile(r'<(?:script|img|iframe|source|video|audio)\b[^>]*?\bsrc="([^"]+)"'
                     r'|<link\b[^>]*?\bhref="([^"]+)"'
                     r'|@import\s+url\(\s*["\']?([^"\')]+)'
                     r'|\bimport\s*\(?\s*["\']([^"\']+)["\']'
                     r'|\bfrom\s+["\'](https?://[^"\']+)["\']')
_LINKED = re.compile(r'\b(?:href|src)="([^"]+)"')


def remote_resources(text: str) -> list[str]:
    """The URLs that a page loads from the network when viewed (scripts, styles, images, imports);
    plain ``<a href>`` links are not loaded and not listed."""
    found = []
    for match in _LOADED.finditer(text):
        url = next(g for g in match.groups() if g)
        if re.match(r"^(?:https?:)?//", url) and url not in found:
            found.append(url)
    return found


def local_links(text: str) -> list[str]:
    """The relative targets of ``href``/``src`` attributes (without query or fragment)."""
    targets = []
    for url in _LINKED.findall(text):
        url = html.unescape(url)
        if url.startswith("#") or re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)", url):
            continue
        url = re.split(r"[?#]", url, maxsplit=1)[0]
        if url and url not in targets:
            targets.append(url)
    return targets


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _nav(lecture: Lecture, previous: Lecture | None, following: Lecture | None, *, page: bool) -> str:
    """The navigation of a page (``page=True``) or of a slide deck."""
    if not page:
        return " ".join([_link("index.html", "Index"), _link(lecture.page, "Page")])
    items = [_link(previous.page, f"\u2190 {previous.title}") if previous else "",
             _link("index.html", "Index"), _link(lecture.slides, "Slides")]
    if lecture.solutions_of:
        items.append(_link(lecture.solutions_of + ".html", "Lecture"))
    elif lecture.solutions:
        items.append(_link(lecture.solutions.page, "Solutions"))
    items.append(_link(following.page, f"{following.title} \u2192") if following else "")
    return " ".join(f"<span>{item}</span>" for item in items)


def _index_html(lectures: list[Lecture], reveal_note: str) -> str:
    rows = []
    for lecture in lectures:
        solutions = lecture.solutions
        cells = [_link(lecture.page, lecture.title), _link(lecture.slides, "slides"),
                 (_link(solutions.page, "solutions") + " (" + _link(solutions.slides, "slides") + ")")
                 if solutions else ""]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>symxent lectures</title>
<script src="{MATHJAX_URL}"></script>
<script type="text/x-mathjax-config">
MathJax.Hub.Config({{tex2jax: {{inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}},
  "HTML-CSS": {{availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}}, messageStyle: "none"}});
</script>
<style type="text/css">
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }}
td {{ padding: 4px 12px 4px 0; vertical-align: top; }}
td + td {{ white-space: nowrap; }}
p.note {{ color: #555; font-size: 90%; }}
</style>
</head>
<body>
<h1>symxent lectures</h1>
<p>The cross-entropy family, derived step by step: each lecture as a page and as slides
(the arrow keys move between slides).</p>
<table>
{chr(10).join(rows)}
</table>
<p class="note">{html.escape(reveal_note)}</p>
</body>
</html>
"""


# --- the build --------------------------------------------------------------------------------

@dataclass
class BuildReport:
    outdir: Path
    lectures: list[Lecture]
    files: list[Path] = field(default_factory=list)
    reveal: str = ""                 # the prefix the slides load reveal.js from
    reveal_bundled: bool = False
    remote: dict = field(default_factory=dict)    # file name -> URLs it loads from the network
    broken: dict = field(default_factory=dict)    # file name -> relative links that do not resolve

    @property
    def notes(self) -> list[str]:
        lines = []
        if not self.reveal_bundled:
            lines.append(f"NOTE: {OFFLINE_HINT} (the slides load reveal.js from {self.reveal}; "
                         "`pip install sphinx-revealjs` bundles a copy)")
        others = sorted({url for urls in self.remote.values() for url in urls if not url.startswith(self.reveal)})
        if others:
            lines.append("NOTE: the exported files also load from the network: " + ", ".join(others))
        for name, links in sorted(self.broken.items()):
            lines.append(f"WARNING: {name} links to files that are not in the output: {', '.join(links)}")
        return lines


def _reveal_prefix(outdir: Path, reveal_prefix: str | None) -> tuple[str, bool]:
    """(the prefix the slides use, whether reveal.js is in OUTDIR)."""
    if reveal_prefix and _is_url(reveal_prefix):
        return reveal_prefix.rstrip("/"), False
    if reveal_prefix:
        source = Path(reveal_prefix).expanduser()
        if not (source / "dist" / "reveal.js").is_file():
            inside = outdir / reveal_prefix
            if (inside / "dist" / "reveal.js").is_file():   # a copy already in OUTDIR, relative to it
                return reveal_prefix.rstrip("/"), True
            raise LecturesError(f"--reveal-prefix {reveal_prefix}: neither a URL nor a reveal.js directory "
                                "(one with dist/reveal.js)")
    else:
        source = reveal_source()
        if source is None:
            return REVEAL_CDN, False
    if source.resolve() != (outdir / REVEAL_DIR).resolve():
        _copy_reveal(source, outdir / REVEAL_DIR)
    return REVEAL_DIR, True


def build(outdir, notebooks=None, reveal_prefix: str | None = None, log=print) -> BuildReport:
    """Export every lecture notebook (page and slides) and the index into ``outdir``."""
    try:
        import nbformat
        from jinja2 import DictLoader
        from nbconvert import HTMLExporter, SlidesExporter
    except ImportError as exc:
        raise LecturesError(f"{exc.name} is not installed: pip install -e '.[lectures]'") from None

    directory = Path(notebooks) if notebooks is not None else default_notebooks_dir()
    lectures = find_lectures(directory)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mathjax_source(), outdir / MATHJAX_DIR, dirs_exist_ok=True)
    prefix, bundled = _reveal_prefix(outdir, reveal_prefix)
    report = BuildReport(outdir, lectures, reveal=prefix, reveal_bundled=bundled)

    loader = DictLoader({"symxent_page.html.j2": PAGE_TEMPLATE, "symxent_slides.html.j2": SLIDES_TEMPLATE})
    common = {"extra_loaders": [loader], "mathjax_url": MATHJAX_URL}
    page_exporter = HTMLExporter(template_name="lab", template_file="symxent_page.html.j2", **common)
    slides_exporter = SlidesExporter(template_name="reveal", template_file="symxent_slides.html.j2",
                                     reveal_url_prefix=prefix, reveal_scroll=True, **common)

    for position, lecture in enumerate(lectures):
        previous = lectures[position - 1] if position > 0 else None
        following = lectures[position + 1] if position + 1 < len(lectures) else None
        for item in [lecture] + ([lecture.solutions] if lecture.solutions else []):
            notebook = nbformat.read(item.path, as_version=4)
            slides_notebook = copy.deepcopy(notebook)
            set_slide_types(slides_notebook, overwrite=False)
            for exporter, nb, name, is_page in [(page_exporter, notebook, item.page, True),
                                                (slides_exporter, slides_notebook, item.slides, False)]:
                resources = {"metadata": {"name": item.title, "path": str(item.path.parent)},
                             "symxent_nav": _nav(item, previous, following, page=is_page)}
                body, _ = exporter.from_notebook_node(nb, resources=resources)
                body = _NOTEBOOK_LINK.sub(r'href="\1.html\2"', body)
                (outdir / name).write_text(body, encoding="utf-8")
                report.files.append(outdir / name)
                log(f"wrote {outdir / name}")

    index = outdir / "index.html"
    reveal_note = ("Everything here works offline." if bundled else
                   f"The pages work offline; the {OFFLINE_HINT} (they load it from {prefix}).")
    index.write_text(_index_html(lectures, reveal_note), encoding="utf-8")
    report.files.append(index)
    log(f"wrote {index}")

    for path in report.files:
        text = path.read_text(encoding="utf-8")
        remote = remote_resources(text)
        if remote:
            report.remote[path.name] = remote
        broken = [link for link in local_links(text) if not (outdir / link).exists()]
        if broken:
            report.broken[path.name] = broken
    return report
