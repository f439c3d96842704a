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

__all__ = ["token_labels", "attention_view", "head_explorer"]


def token_labels(tokens: torch.Tensor, tokenizer=None, bos: int | None = None) -> list[str]:
    """Readable strings for a 1-D tensor of token ids (BOS shown as ``<bos>``)."""
    from induction_course.data import bos_id, load_tokenizer

    tok = tokenizer or load_tokenizer()
    bos = bos_id(tok) if bos is None else bos
    out = []
    for i, t in enumerate(tokens.tolist()):
        s = "<bos>" if t == bos else tok.decode([t]).replace("\n", "\\n") or tok.id_to_token(t)
        out.append(s)
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
    return InlineHTML(rendered.local_src, f"<attention patterns: {n_heads} heads, {n_pos} tokens>")


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
            p = patterns[prompt.value][layer.value][head.value]
            lab = labels[prompt.value]
            fig, ax = plt.subplots(figsize=(6, 5))
            ax.imshow(p, cmap="Blues", vmin=0, vmax=1)
            if len(lab) <= 40:
                ax.set_xticks(range(len(lab)), lab, rotation=90, fontsize=7)
                ax.set_yticks(range(len(lab)), lab, fontsize=7)
            ax.set_xlabel("key")
            ax.set_ylabel("query")
            ax.set_title(f"{prompt.value}: head {layer.value}.{head.value}")
            plt.show()
            plt.close(fig)

    for w in (prompt, layer, head):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([prompt, layer, head]), out])
