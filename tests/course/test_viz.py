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


# ------------------------------------------------------------------ readable token labels
def test_partial_utf8_tokens_are_shown_as_escaped_bytes_never_the_replacement_character():
    from induction_course.data import load_tokenizer

    tok = load_tokenizer()
    labels = viz.token_labels(torch.arange(tok.get_vocab_size()), tok)
    assert len(labels) == tok.get_vocab_size()
    assert not [lab for lab in labels if "\ufffd" in lab], "a label shows the replacement character"
    assert all(lab for lab in labels), "an empty label"
    # a lone byte of a multi-byte character is written the way repr writes it
    assert viz.readable(b"\xe2") == "\\xe2"
    assert viz.readable("é".encode()) == "é"
    assert viz.readable(b"\n\t") == "\\n\\t"
    assert viz.readable(b"   ") == "␣␣␣"
    partial = [i for i in range(tok.get_vocab_size()) if len(viz.token_bytes(i, tok)) == 1
               and viz.token_bytes(i, tok)[0] >= 0x80]
    assert partial, "the shipped tokenizer has single-byte tokens above 0x7f"
    assert all(re.fullmatch(r"(\\x[0-9a-f]{2})+", labels[i]) for i in partial)


def test_explorer_labels_every_token_of_a_64_token_prompt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"t{i}" for i in range(64)]
    fig = viz.explorer_figure(_pattern(1, 64)[0], labels, "demo")
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == labels
        assert len(ax.get_yticklabels()) == 64 and all(t.get_text() for t in ax.get_yticklabels())
        assert fig.get_size_inches()[0] >= 0.15 * 64
    finally:
        plt.close(fig)


def test_head_explorer_builds_for_prompts_longer_than_40_tokens():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from induction_course import checkpoints

    model = checkpoints.load_model().eval()
    text = checkpoints.load_eval_set().text
    widget = viz.head_explorer(model, {"python": text[0, :64]})
    assert widget is not None


def test_attention_view_labels_every_tick():
    """chart.js's autoSkip (which drops every other token label) is switched off in the bundle."""
    view = viz.attention_view(_pattern(2, 5), ["<bos>", "a", "b", "c", "d"])
    assert "autoSkip:!1" in view.html and "autoSkip:!0" not in view.html
    long = viz.attention_view(_pattern(1, 51), [f"t{i}" for i in range(51)])
    assert 'size:9,style:"normal"' in long.html
