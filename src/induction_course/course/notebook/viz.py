"""Interactive views of attention: circuitsvis patterns and an ipywidgets head explorer.

Both do nothing harmful when run headless (nbclient, nbgrader): they return objects that a
notebook front end displays. Without circuitsvis or ipywidgets installed they fall back to
matplotlib.

The circuitsvis views always carry circuitsvis's JavaScript inline (about 1.3 MB per view).
circuitsvis itself decides at display time: it probes ``http://google.com`` from the kernel
and, when that answers, emits a page that imports the bundle from unpkg.com. That makes a
saved notebook depend on who ran it and where, puts a network call in every display, and
leaves exported HTML blank offline. Inline is bigger but always draws.
"""

from __future__ import annotations

from typing import Sequence

import torch

from induction_course.model import hook_name

__all__ = ["token_labels", "readable", "token_bytes", "attention_view", "head_explorer", "explorer_figure"]


_BYTE_DECODER: dict[str, int] | None = None


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-level alphabet (each byte 0-255 is one printable character)."""
    global _BYTE_DECODER
    if _BYTE_DECODER is None:
        printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        chars, extra = {}, 0
        for b in range(256):
            if b in printable:
                chars[chr(b)] = b
            else:
                chars[chr(256 + extra)] = b
                extra += 1
        _BYTE_DECODER = chars
    return _BYTE_DECODER


def readable(raw: bytes) -> str:
    """A token's bytes as a label: valid UTF-8 as text; a byte that is not (part of a character
    split across tokens) as ``\\xe2``, the way ``repr`` writes it; control characters escaped
    (``\\n``, ``\\t``); a token of spaces only as ``␣``. Never the replacement character "�"."""
    text = raw.decode("utf-8", errors="backslashreplace")
    out = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
    if out and out.strip(" ") == "":
        out = "␣" * len(out)
    return out.replace("\ufffd", "\\ufffd")


def token_bytes(token_id: int, tokenizer) -> bytes:
    """The raw bytes of one token of a byte-level BPE tokenizer (its vocabulary string mapped back)."""
    piece = tokenizer.id_to_token(int(token_id))
    if piece is None:
        return b""
    dec = _byte_decoder()
    if all(ch in dec for ch in piece):
        return bytes(dec[ch] for ch in piece)
    return tokenizer.decode([int(token_id)]).encode("utf-8")


def token_labels(tokens: torch.Tensor, tokenizer=None, bos: int | None = None) -> list[str]:
    """One readable label per token id of a 1-D tensor: BOS as ``<bos>``, every other token
    through :func:`readable` (bytes that are partial UTF-8 shown as ``\\xe2``, never "�")."""
    from induction_course.data import bos_id, load_tokenizer

    tok = tokenizer or load_tokenizer()
    bos = bos_id(tok) if bos is None else bos
    out = []
    for t in tokens.tolist():
        if t == bos:
            out.append("<bos>")
            continue
        out.append(readable(token_bytes(t, tok)) or f"<{t}>")
    return out


class InlineHTML:
    """HTML that a notebook displays as is (``_repr_html_``), with a short plain-text repr."""

    def __init__(self, html: str, text: str):
        self.html = html
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def attention_view(pattern: torch.Tensor, labels: Sequence[str], head_names: Sequence[str] | None = None):
    """``pattern[head, q, k]`` of one sequence as a circuitsvis view (matplotlib if missing).

    The view is self-contained HTML (JavaScript inline, no network; see the module docstring).
    """
    pattern = pattern.detach().float().cpu()
    try:
        import circuitsvis as cv
    except ImportError:  # pragma: no cover - the course extra installs it
        from induction_course.plots import attention_patterns

        names = list(head_names or [f"head {h}" for h in range(pattern.shape[0])])
        return attention_patterns(pattern, list(labels), names)
    rendered = cv.attention.attention_heads(
        attention=pattern, tokens=list(labels),
        attention_head_names=list(head_names) if head_names else None,
    )
    # local_src, not _repr_html_(): the latter picks the CDN version whenever google.com answers
    n_heads, n_pos = pattern.shape[0], pattern.shape[-1]
    html = label_every_tick(rendered.local_src, small_font=n_pos > 40)
    return InlineHTML(html, f"<attention patterns: {n_heads} heads, {n_pos} tokens>")


# chart.js defaults inside circuitsvis's inline bundle: by default it drops every other axis
# label once they crowd (autoSkip), so half the tokens of a 51-token prompt go unlabelled.
_AUTOSKIP = ("display:!0,autoSkip:!0", "display:!0,autoSkip:!1")
_FONT = ('size:12,style:"normal"', 'size:9,style:"normal"')


def label_every_tick(html: str, small_font: bool = False) -> str:
    """circuitsvis HTML whose charts label every tick (chart.js ``autoSkip`` off), in a 9 px
    font when ``small_font``. Unchanged if the bundle does not hold the expected defaults."""
    if html.count(_AUTOSKIP[0]) == 1:
        html = html.replace(*_AUTOSKIP)
    if small_font and html.count(_FONT[0]) == 1:
        html = html.replace(*_FONT)
    return html


def explorer_figure(pattern: torch.Tensor, labels: Sequence[str], title: str):
    """One head's pattern ``[q, k]`` as a heatmap with *every* token labelled on both axes
    (the figure grows with the prompt and the font shrinks, so 64 tokens stay readable)."""
    import matplotlib.pyplot as plt

    n = len(labels)
    side = max(6.0, 0.17 * n + 1.5)
    font = 7 if n <= 40 else 6
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    ax.imshow(pattern.detach().float().cpu(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), list(labels), rotation=90, fontsize=font, family="monospace")
    ax.set_yticks(range(n), [f"{lab} {i}" for i, lab in enumerate(labels)], fontsize=font, family="monospace")
    ax.set_xlabel("key")
    ax.set_ylabel("query (token, position)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens[None], names_filter=lambda n: n.endswith("hook_pattern"))
    return [cache[hook_name("pattern", l)][0] for l in range(model.cfg.n_layers)]


def head_explorer(model, prompts: dict[str, torch.Tensor], tokenizer=None):
    """An ipywidgets explorer: pick a prompt, a layer and a head; see its pattern as a heatmap.

    ``prompts`` maps a name to a 1-D tensor of token ids. Returns the widget (display it as the
    last expression of a cell). Without ipywidgets, returns ``None``.
    """
    try:
        import ipywidgets as widgets
    except ImportError:  # pragma: no cover
        return None
    import matplotlib.pyplot as plt

    labels = {k: token_labels(v, tokenizer) for k, v in prompts.items()}
    patterns = {k: _patterns(model, v) for k, v in prompts.items()}
    prompt = widgets.Dropdown(options=list(prompts), description="prompt")
    layer = widgets.IntSlider(0, 0, model.cfg.n_layers - 1, description="layer")
    head = widgets.IntSlider(0, 0, model.cfg.n_heads - 1, description="head")
    out = widgets.Output()

    def draw(*_):
        out.clear_output(wait=True)
        with out:
            fig = explorer_figure(patterns[prompt.value][layer.value][head.value], labels[prompt.value],
                                  f"{prompt.value}: head {layer.value}.{head.value}")
            plt.show()
            plt.close(fig)

    for w in (prompt, layer, head):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([prompt, layer, head]), out])
