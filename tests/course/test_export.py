"""Offline HTML export: what the page references, and one clear line for bad input.

Whether the page really draws, in a browser and without network, is tests/course/test_browser_render.py.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from induction_course.course.cli import main
from induction_course.course.notebook.export import WIDGET_NOTE, ExportError, notebook_to_html, remote_images_to_text

pytest.importorskip("nbconvert")

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_LINK = "https://colab.research.google.com/github/org/repo/blob/main/x.ipynb"
REMOTE_PNG = "http://example.invalid/x.png"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# what a browser would fetch: a script, stylesheet, frame or image from another host
FETCHED = re.compile(r"""<(?:script|link|img|iframe|source|video|audio)\b[^>]*"""
                     r"""\b(?:src|href)\s*=\s*["']?(?:[a-z]+:)?//""", re.IGNORECASE)


def remote_notebook():
    """Everything that makes a plain nbconvert page go online, in one small notebook."""
    md = (f"[![Open In Colab]({COLAB_BADGE})]({COLAB_LINK}) and $x_i$ stays TeX\n\n"
          "<img src='//example.invalid/protocol-relative.png'> and "
          "![a local plot](data:image/png;base64,iVBORw0KGgo=)")
    html_out = nbformat.v4.new_output(
        "display_data", data={"text/html": f'<img alt="remote picture" src="{REMOTE_PNG}">'})
    widget_out = nbformat.v4.new_output("execute_result", execution_count=1, data={
        "text/plain": "VBox(...)", WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "abc"}})
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(md),
        nbformat.v4.new_code_cell("display(HTML(...))", outputs=[html_out]),
        nbformat.v4.new_code_cell("widget", outputs=[widget_out], execution_count=1),
    ])
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {"abc": {
        "model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0", "state": {}}}}}
    return nb


def test_remote_images_become_alt_text_and_links_stay():
    html = (f'<a href="{COLAB_LINK}"><img alt="Open In Colab" src="{COLAB_BADGE}"></a>'
            "<img src='//cdn.example/x.png'><img src=\"data:image/png;base64,AAAA\" alt=\"kept\"><img src=\"pic.png\">")
    out = remote_images_to_text(html)
    assert f'<a href="{COLAB_LINK}"><span class="offline-image"' in out and ">Open In Colab</span></a>" in out
    assert ">image</span>" in out  # no alt: a placeholder word
    assert '<img src="data:image/png;base64,AAAA" alt="kept">' in out and '<img src="pic.png">' in out
    assert not FETCHED.search(out)


def test_export_references_nothing_outside_the_file(tmp_path):
    nb = remote_notebook()
    before = json.dumps(nb, sort_keys=True)
    html = notebook_to_html(nb, tmp_path / "page.html").read_text()

    assert not FETCHED.search(html), FETCHED.search(html)
    assert "<script src" not in html and "require.js" not in html and "mathjax" not in html.lower()
    assert WIDGET_STATE not in html and WIDGET_VIEW not in html
    assert html.count(WIDGET_NOTE) == 1
    assert f'<a href="{COLAB_LINK}">' in html and ">Open In Colab</span>" in html and ">remote picture</span>" in html
    assert "$x_i$" in html
    assert json.dumps(nb, sort_keys=True) == before  # the caller's notebook is not modified


def test_local_markdown_images_are_embedded(tmp_path):
    (tmp_path / "pic.png").write_bytes(bytes.fromhex("89504e470d0a1a0a"))  # a PNG signature is enough
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("![plot](pic.png)")]),
                   tmp_path / "nb.ipynb")
    html = notebook_to_html(tmp_path / "nb.ipynb", tmp_path / "out" / "nb.html").read_text()
    assert 'src="data:image/png;base64,' in html and 'src="pic.png"' not in html


@pytest.mark.parametrize("name, content, message", [
    ("missing.ipynb", None, "no such file"),
    ("folder.ipynb", "dir", "not a file"),
    ("truncated.ipynb", '{"cells": [', "not a Jupyter notebook"),
    ("answer.ipynb", '{"answer": 42}', "not a valid Jupyter notebook"),
    ("list.ipynb", "[]", "not a valid Jupyter notebook"),
])
def test_bad_input_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ExportError, match=re.escape(message)) as info:
        notebook_to_html(path, tmp_path / "out.html")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out.html").exists()


def test_cli_export_html(tmp_path, capsys):
    nbformat.write(remote_notebook(), tmp_path / "ch.ipynb")
    assert main(["export-html", str(tmp_path / "ch.ipynb")]) == 0
    assert (tmp_path / "ch.html").is_file() and "wrote" in capsys.readouterr().out
    assert main(["export-html", str(tmp_path / "ch.ipynb"), "--out", str(tmp_path / "x" / "y.html")]) == 0
    assert (tmp_path / "x" / "y.html").is_file()

    assert main(["export-html", str(tmp_path / "nope.ipynb")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("induction-course export-html: error:") and "no such file" in err
    assert len(err.splitlines()) == 1


def test_cli_export_html_reports_a_failing_cell(tmp_path, capsys):
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    assert main(["export-html", str(tmp_path / "bad.ipynb"), "--execute"]) == 2
    err = capsys.readouterr().err.strip()
    assert "a cell failed while executing (ZeroDivisionError: division by zero)" in err
    assert len(err.splitlines()) == 1
