"""Interactive explorers (ipywidgets) for the book and the labs.

Each explorer is a function returning a widget; its rendering logic is a plain function too, so the
book can show the same picture statically (and tests can check it without a browser).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from labsupport.tokenizers import BPEVocab, encode

PALETTE = ["#fde2e4", "#dbeafe", "#dcfce7", "#fef9c3", "#ede9fe", "#ffedd5", "#cffafe", "#fce7f3"]


def tokens_html(ids: list[int], bpe: BPEVocab) -> str:
    """HTML with one coloured box per token (its text above, its id below)."""
    boxes = []
    for n, i in enumerate(ids):
        piece = bpe.token_str(i).replace(" ", "␣").replace("\n", "⏎")
        boxes.append(
            f"<span style='display:inline-block;margin:2px;padding:2px 4px;border-radius:4px;"
            f"background:{PALETTE[n % len(PALETTE)]};font-family:monospace;text-align:center'>"
            f"{html.escape(piece)}<br><small style='color:#555'>{i}</small></span>")
    return "<div style='line-height:2.2'>" + "".join(boxes) + "</div>"


def tokenizer_explorer(bpe: BPEVocab, text: str = "Hello world! Tokenizers split text into pieces.",
                       tokenize: Callable[[str, BPEVocab], list[int]] = encode) -> widgets.VBox:
    """Type text, see its tokens coloured with their ids, and the count of tokens and bytes."""
    box = widgets.Textarea(value=text, description="Text:", layout=widgets.Layout(width="100%"))
    out = widgets.HTML()

    def render(_=None) -> None:
        ids = tokenize(box.value, bpe)
        n_bytes = len(box.value.encode("utf-8"))
        out.value = (tokens_html(ids, bpe) + f"<p>{len(ids)} tokens for {n_bytes} bytes "
                     f"({len(ids) / max(n_bytes, 1):.2f} tokens per byte)</p>")

    box.observe(render, names="value")
    render()
    return widgets.VBox([box, out])
