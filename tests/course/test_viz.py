"""circuitsvis views are self-contained: the same HTML online or offline, no network at display."""

from __future__ import annotations

import re
import sys

import pytest
import torch

from induction_course.course.notebook import viz

pytest.importorskip("circuitsvis")


def _pattern(n_heads=3, n_pos=5):
    scores = torch.randn(n_heads, n_pos, n_pos, generator=torch.Generator().manual_seed(0))
    return scores.masked_fill(torch.ones(n_pos, n_pos).triu(1).bool(), float("-inf")).softmax(-1)


def test_attention_view_inlines_circuitsvis_and_never_probes_the_network(monkeypatch):
    import circuitsvis.utils.render as cv_render

    def no_network(*args, **kwargs):
        raise AssertionError("attention_view must not probe the network")

    # circuitsvis' own _repr_html_ calls internet_on(); ours must not, at build or display time
    monkeypatch.setattr(cv_render, "internet_on", no_network)
    monkeypatch.setattr(cv_render.request, "urlopen", no_network)
    view = viz.attention_view(_pattern(), ["<bos>", "a", "b", "c", "d"], ["0.0", "0.1", "0.2"])
    html = view._repr_html_()

    assert "unpkg.com" not in html
    assert not re.search(r"""import\s[^;]*from\s*["'](?:https?:)?//""", html), "a module imported from a URL"
    assert not re.search(r"""\bsrc\s*=\s*["']?(?:https?:)?//""", html), "a script or image from a URL"
    assert "CircuitsVis.render(" in html and "CircuitsVis.AttentionHeads" in html
    assert re.search(r'<div id="circuits-vis-[0-9a-f-]+"', html)
    assert '"attentionHeadNames": ["0.0", "0.1", "0.2"]' in html
    assert repr(view) == "<attention patterns: 3 heads, 5 tokens>"


def test_attention_view_falls_back_to_matplotlib_without_circuitsvis(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setitem(sys.modules, "circuitsvis", None)  # import fails
    fig = viz.attention_view(_pattern(2, 4), ["<bos>", "a", "b", "c"], ["0.0", "0.1"])
    try:
        assert [ax.get_title() for ax in fig.axes] == ["0.0", "0.1"]
    finally:
        plt.close(fig)
