"""An executed chapter, exported offline, really draws in a browser, and asks the network nothing.

Checks the page as Chromium rendered it (see browser_harness): each circuitsvis view holds one
drawn canvas per head plus the zoomed one, each plot decoded and is not blank, the screenshot
shows the first view's pattern, and the net log has no request for an http/https/ws URL.
Expected counts come from the notebook's source and the views' own props, not from here.
A second test proves the net-log check can fail: a plain nbconvert page of a notebook with a
remote badge and image is caught asking for them, and the offline export of it is not.
"""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import urlsplit

import nbformat
import pytest

from browser_harness import chromium_or_skip, page_requests, packets_sent, render
from conftest import ROOT
from induction_course.course.notebook.export import WIDGET_NOTE, notebook_to_html

pytest.importorskip("nbconvert")

CHAPTER = "03_finding_heads"
# Below these, a canvas or image did not draw: a blank or truncated PNG measures 1 colour and
# no ink; a single thin line plot about 40 colours and 2 % ink (ink: pixels unlike the commonest)
MIN_COLOURS, MIN_INK = 8, 0.005


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _view_props(page_html: str) -> list[dict]:
    """The props each circuitsvis view was rendered with, in page order."""
    calls = re.findall(r"CircuitsVis\.AttentionHeads,\s*(\{.*?\})\s*\)\s*</script>", page_html, re.S)
    return [json.loads(c) for c in calls]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    """The reference notebook executed in a scratch folder (as test_grading_notebooks does)."""
    chromium_or_skip()  # before the 20 s of executing
    work = tmp_path_factory.mktemp("browser")
    src = ROOT / "solutions" / CHAPTER / f"{CHAPTER}.ipynb"
    copy = work / src.name  # executing writes nothing next to solutions/
    shutil.copyfile(src, copy)
    for picture in src.parent.glob("*.png"):  # the expected-output pictures the Markdown shows
        shutil.copyfile(picture, work / picture.name)
    page = notebook_to_html(copy, work / f"{CHAPTER}.html", execute=True, timeout=300)
    return {"nb": nbformat.read(src, as_version=4), "page": page, "rendered": render(page, work / "chromium")}


@pytest.mark.slow
def test_chapter_draws_offline(chapter):
    import numpy as np
    from PIL import Image

    code, page_html, r = _code(chapter["nb"]), chapter["page"].read_text(), chapter["rendered"]
    probe = r.probe
    assert probe is not None, "the probe never reported: the page did not finish loading"
    assert "probeError" not in probe, probe
    assert probe["errors"] == []

    # circuitsvis: every view rendered its heads, as thumbnails plus one zoomed pattern
    props = _view_props(page_html)
    n_views = code.count("attention_view(")
    assert n_views > 0 and len(props) == n_views and len(probe["views"]) == n_views
    for view, prop in zip(probe["views"], props):
        names = prop["attentionHeadNames"]
        assert len(names) == len(prop["attention"]), "one name per head"
        assert view["children"] > 0 and view["rect"]["width"] > 0 and view["rect"]["height"] > 0, view["id"]
        assert view["labels"] == names, view["id"]
        assert len(view["canvases"]) == len(names) + 1, view["id"]
        for c in view["canvases"]:
            assert c["rect"]["width"] > 0 and c["rect"]["height"] > 0, view["id"]
            assert c["colours"] >= MIN_COLOURS and c["inked"] >= MIN_INK, (view["id"], c)

    # plots: every plt.show() left an image, and every expected-output picture of the Markdown
    # (a local PNG, embedded by the export) is one too; each decoded and is not blank
    markdown = "\n".join(c.source for c in chapter["nb"].cells if c.cell_type == "markdown")
    pictures = len(re.findall(r"!\[[^\]]*\]\((?!https?:)[^)\s]+\.png\)", markdown))
    assert len(probe["images"]) == code.count("plt.show()") + pictures and code.count("plt.show()") > 0
    for im in probe["images"]:
        assert im["src"].startswith("data:image/png") and im["complete"] and im["naturalWidth"] > 0, im
        assert im["colours"] >= MIN_COLOURS and im["inked"] >= MIN_INK, im

    assert probe["text"].count(WIDGET_NOTE) == code.count("head_explorer(") > 0

    # the screenshot: a real picture, and the first view's pattern is in it, in colour
    shot = np.asarray(Image.open(r.screenshot).convert("RGB")).astype(int)
    colours = np.unique(shot[..., 0] << 16 | shot[..., 1] << 8 | shot[..., 2])
    assert len(colours) >= 64, "the screenshot is (nearly) uniform"
    box = probe["firstView"]
    assert 0 <= box["y"] < shot.shape[0] / 2, box
    crop = shot[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
    saturation = crop.max(axis=-1) - crop.min(axis=-1)  # page chrome is grey; patterns are blue
    assert (saturation > 60).mean() > 0.01, "no attention pattern visible in the screenshot"

    assert page_requests(r.netlog) == []
    assert packets_sent(r.netlog) == []


def test_net_log_catches_what_a_page_fetches_and_the_offline_export_fetches_nothing(tmp_path):
    from nbconvert import HTMLExporter

    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    remote = "http://example.invalid/x.png"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"[![Open In Colab]({badge})](https://colab.research.google.com/x)"),
        nbformat.v4.new_code_cell("show()", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/html": f'<img alt="remote picture" src="{remote}">'})]),
    ])

    exporter = HTMLExporter(template_name="lab")
    plain = tmp_path / "plain.html"
    plain.write_text(exporter.from_notebook_node(nb)[0], encoding="utf-8")
    asked = {urlsplit(u).hostname for u in page_requests(render(plain, tmp_path / "plain", probe=False).netlog)}
    expected = {urlsplit(u).hostname for u in (badge, remote, exporter.require_js_url)}
    assert expected <= asked, f"the net-log check missed {expected - asked}"

    offline = render(notebook_to_html(nb, tmp_path / "offline.html"), tmp_path / "offline")
    assert page_requests(offline.netlog) == []
    assert packets_sent(offline.netlog) == []
    assert "Open In Colab" in offline.probe["text"] and "remote picture" in offline.probe["text"]
    assert offline.probe["images"] == []


# ------------------------------------------------------- chapter 3's views: a label on every token


def _page(body: str, title: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;margin:8px'>{body}</body></html>")


@pytest.mark.slow
def test_chapter3_attention_view_and_explorer_label_every_token(tmp_path):
    """Chapter 3's circuitsvis view (the repeated-token probe, layer 1) and the explorer's figure
    (the 64-token Python prompt, an induction head) in headless Chromium: every token has a
    readable label ("\\xe2"-style escapes, never "�"), the view draws, the figure decodes.
    Screenshots are kept in the test's folder, and copied to $INDUCTION_SHOTS when it is set."""
    import base64
    import io
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from PIL import Image

    from induction_course import checkpoints
    from induction_course.course.notebook import viz
    from induction_course.model import hook_name
    from induction_course.probes import repeated_random_tokens

    chromium_or_skip()
    model = checkpoints.load_model().eval()
    eval_set = checkpoints.load_eval_set()
    pool = torch.tensor(checkpoints.load_config()["token_pool"])
    probe = repeated_random_tokens(8, 25, 2, pool, eval_set.bos, seed=0)
    text = eval_set.text[:8, :64]

    # 1. the attention view of the probe (51 tokens) as chapter 3 draws it
    labels = viz.token_labels(probe[0])
    assert len(labels) == probe.shape[1] and all(labels) and not any("\ufffd" in lab for lab in labels)
    _, cache = model.run_with_cache(probe[:1])
    view = viz.attention_view(cache[hook_name("pattern", 1)][0], labels, [f"1.{h}" for h in range(model.cfg.n_heads)])
    page = tmp_path / "view.html"
    page.write_text(_page(view._repr_html_(), "chapter 3 attention view"), encoding="utf-8")
    r = render(page, tmp_path / "view", window=(1200, 1400))
    assert r.probe is not None and r.probe["errors"] == [], r.probe
    props = _view_props(page.read_text(encoding="utf-8"))
    assert len(props) == 1 and props[0]["tokens"] == labels, "the view got one label per token"
    assert len(r.probe["views"]) == 1 and len(r.probe["views"][0]["canvases"]) == model.cfg.n_heads + 1
    assert "\ufffd" not in r.probe["text"] and "\ufffd" not in r.dom

    # 2. the explorer's figure for the 64-token Python prompt: every token on both axes
    text_labels = viz.token_labels(text[0])
    assert len(text_labels) == 64 and not any("\ufffd" in lab for lab in text_labels)
    _, cache = model.run_with_cache(text[:1])
    fig = viz.explorer_figure(cache[hook_name("pattern", 1)][0, 2], text_labels, "python source: head 1.2")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == text_labels
    assert len(ax.get_yticklabels()) == 64
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    page2 = tmp_path / "explorer.html"
    page2.write_text(_page(f"<div class='jp-RenderedMarkdown'><img alt='explorer' src='data:image/png;base64,{img}'></div>",
                           "chapter 3 explorer"), encoding="utf-8")
    r2 = render(page2, tmp_path / "explorer", window=(1300, 1300))
    assert r2.probe is not None and r2.probe["errors"] == []
    (im,) = r2.probe["images"]
    assert im["complete"] and im["naturalWidth"] > 0 and im["colours"] >= MIN_COLOURS and im["inked"] >= MIN_INK, im

    for shot in (r.screenshot, r2.screenshot):
        pixels = np.asarray(Image.open(shot).convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= 64, f"{shot} is (nearly) blank"
    out = os.environ.get("INDUCTION_SHOTS")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copyfile(r.screenshot, os.path.join(out, "ch3_attention_view.png"))
        shutil.copyfile(r2.screenshot, os.path.join(out, "ch3_explorer.png"))
