"""A notebook as one HTML file that opens anywhere, offline, exactly as it was run.

Why not plain ``jupyter nbconvert --to html``: its page loads require.js and MathJax from
cdnjs, mermaid when a diagram is present, and the Jupyter widget renderer from a CDN when the
notebook holds widget state; Markdown badges (Colab, Binder) are remote images. Offline (a
classroom without internet, an archived submission, CI) the page then waits on requests that
never answer, and online every reader tells those hosts what they opened. So the page made
here references nothing outside itself:

- the JupyterLab look (its CSS inlined, as nbconvert's ``lab`` template does) without the CDN
  scripts (the template ``templates/offline_html`` empties those blocks and nothing else);
- TeX stays as written (``$x_i$``): readable, and MathJax is a CDN script;
- remote images in Markdown and in HTML outputs become their alt text; a link around
  them stays a link (following it is the reader's choice, not the page's);
- a widget becomes a one-line note: without a kernel it cannot run, and drawing its saved
  state needs the renderer from a CDN;
- local Markdown images and plots are embedded as ``data:`` URIs.

circuitsvis views draw because :func:`induction_course.course.notebook.viz.attention_view` inlines their
JavaScript. Other remote resources hand-written into an output (a ``<script src=https://…>``)
are left alone: the course has none, and ``tests/course/test_browser_render.py`` would catch one.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
from pathlib import Path

__all__ = ["ExportError", "notebook_to_html", "remote_images_to_text"]

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "offline_html"
# the kernel gets this backend whatever the caller's environment says (the test suite sets
# MPLBACKEND=Agg, under which plt.show() draws nothing into the notebook)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "interactive widget: open the notebook in Jupyter to use it"

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = r"""\b{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"""
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host


class ExportError(Exception):
    """The notebook cannot be exported (missing, not a notebook, a cell failed)."""


def _attr(tag: str, name: str) -> str | None:
    m = re.search(_ATTR.format(name=name), tag, re.IGNORECASE)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def remote_images_to_text(fragment: str) -> str:
    """Each ``<img>`` whose source is on another host becomes a span with its alt text.

    A link around the image stays, so the reader can still follow it.
    """

    def replace(m: re.Match) -> str:
        tag = m.group(0)
        src = _attr(tag, "src")
        if src is None or not _REMOTE.match(html.unescape(src)):
            return tag
        alt, title = html.unescape(_attr(tag, "alt") or "image"), f"not loaded offline: {html.unescape(src)}"
        return f'<span class="offline-image" title="{html.escape(title)}">{html.escape(alt)}</span>'

    return _IMG.sub(replace, fragment)


_SCRIPT = re.compile(r"(<script\b.*?</script\s*>)", re.IGNORECASE | re.DOTALL)


def _page_remote_images_to_text(page: str) -> str:
    """:func:`remote_images_to_text` over the rendered page, leaving scripts alone.

    On the rendered page, Markdown images (``![alt](https://...)``) are ``<img>`` tags like any
    other; scripts (circuitsvis's bundle) may spell ``<img`` in strings and must stay intact.
    """
    parts = _SCRIPT.split(page)
    return "".join(p if i % 2 else remote_images_to_text(p) for i, p in enumerate(parts))


def _read(path: Path):
    import nbformat

    if not path.exists():
        raise ExportError(f"{path}: no such file")
    if not path.is_file():
        raise ExportError(f"{path}: not a file")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError) as exc:
        raise ExportError(f"{path}: not a Jupyter notebook (not JSON: {exc})") from exc
    except (nbformat.ValidationError, KeyError, TypeError, AttributeError) as exc:  # JSON, wrong shape
        msg = str(exc).splitlines()[0]
        raise ExportError(f"{path}: not a valid Jupyter notebook ({msg})") from exc
    return nb


def _execute(nb, folder: Path, timeout: int, name: str) -> None:
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    kernel = nb.metadata.get("kernelspec", {}).get("name") or "python3"
    env = dict(os.environ, MPLBACKEND=INLINE_BACKEND)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error"]
        what = f"{errors[0].ename}: {errors[0].evalue}" if errors else str(exc).splitlines()[0]
        raise ExportError(f"{name}: a cell failed while executing ({what})") from exc
    except CellTimeoutError as exc:
        raise ExportError(f"{name}: a cell ran longer than {timeout} s") from exc
    except NoSuchKernel as exc:
        raise ExportError(f"{name}: no Jupyter kernel named {kernel!r} is installed") from exc


def _widgets_to_notes(nb) -> None:
    """Each widget view becomes :data:`WIDGET_NOTE`; the widget state goes (see module doc)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                out["data"] = {"text/plain": WIDGET_NOTE}
                out["metadata"] = {}
    nb.metadata.pop("widgets", None)


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        embed_images=True,
        # never sanitize: circuitsvis views are scripts
        sanitize_html=False,
    )


def notebook_to_html(notebook, out_path, *, execute: bool = False, timeout: int = 600) -> Path:
    """Write ``notebook`` as a self-contained HTML page at ``out_path``; return that path.

    ``notebook`` is a path to an ``.ipynb`` or an ``nbformat`` notebook (not modified).
    ``execute=True`` runs it first in a fresh kernel, in the notebook's folder (the output's
    folder for an in-memory notebook), each cell within ``timeout`` seconds; the notebook file
    itself is never rewritten. Raises :class:`ExportError`.
    """
    out_path = Path(out_path)
    if isinstance(notebook, (str, os.PathLike)):
        src = Path(notebook)
        nb = _read(src)
        name, folder = src.stem, src.resolve().parent
    else:
        nb = copy.deepcopy(notebook)
        name, folder = out_path.stem, out_path.resolve().parent
    if execute:
        _execute(nb, folder, timeout, name)
    _widgets_to_notes(nb)
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": name, "path": str(folder)}})
    body = _page_remote_images_to_text(body)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(body, encoding="utf-8")
    return out_path
