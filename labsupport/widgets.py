"""The tokenizer explorer: byte-level BPE computed in the page, so any text can be typed.

:func:`tokenizer_explorer` returns an object whose HTML carries the vocabulary's merges and a small
JavaScript encoder (GPT-2's pre-tokenisation regex, then the merges replayed in learned order,
exactly like :func:`labsupport.tokenizers.encode`). It works in the online book with no kernel and
in JupyterLab alike; no request leaves the page. It follows the explorer page convention of
:mod:`labsupport.explorer` (``.lab-explorer`` / ``.lab-explorer-controls`` / ``.lab-explorer-view``).

>>> from labsupport.tokenizers import BPEVocab
>>> bpe = BPEVocab({(104, 105): 256})  # one merge: "h" + "i"
>>> print(tokens_html([256, 33], bpe))  # doctest: +ELLIPSIS
<div ...>hi<br><small ...>256</small></span>...!<br><small ...>33</small></span></div>
>>> 'class="lab-explorer"' in tokenizer_explorer(bpe, "hi!")._repr_html_()
True
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence

from labsupport.tokenizers import BPEVocab, encode

PALETTE = ["#fde2e4", "#dbeafe", "#dcfce7", "#fef9c3", "#ede9fe", "#ffedd5", "#cffafe", "#fce7f3"]
BOX = ("display:inline-block;margin:2px;padding:2px 4px;border-radius:4px;font-family:monospace;"
       "text-align:center;color:#111")


def tokens_html(ids: list[int], bpe: BPEVocab) -> str:
    """HTML with one coloured box per token (its text above, its id below)."""
    boxes = []
    for n, i in enumerate(ids):
        piece = bpe.token_str(i).replace(" ", "␣").replace("\n", "⏎")
        boxes.append(f"<span style='{BOX};background:{PALETTE[n % len(PALETTE)]}'>"
                     f"{html.escape(piece)}<br><small style='color:#555'>{i}</small></span>")
    return "<div style='line-height:2.2'>" + "".join(boxes) + "</div>"


# The encoder in the page: the same algorithm as labsupport.tokenizers.encode (special tokens are not
# parsed from typed text). `M` = merges as [left, right, new] sorted by new id (= priority).
_SCRIPT = r"""(function () {
  var root = document.getElementById("%(uid)s");
  var data = JSON.parse(root.querySelector(".lab-explorer-data").textContent);
  var PALETTE = %(palette)s, BOX = "%(box)s";
  var SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  var bytes = {}, rank = {};
  data.byte_ids.forEach(function (id, b) { bytes[id] = [b]; });
  data.merges.forEach(function (m) { bytes[m[2]] = bytes[m[0]].concat(bytes[m[1]]); });
  function encode(text, nMerges) {
    var ids = [];
    rank = {};
    data.merges.slice(0, nMerges).forEach(function (m) { rank[m[0] + "," + m[1]] = m[2]; });
    (text.match(SPLIT) || []).forEach(function (chunk) {
      var part = Array.from(new TextEncoder().encode(chunk), function (b) { return data.byte_ids[b]; });
      while (part.length > 1) {
        var best = -1, bestId = Infinity;
        for (var i = 0; i + 1 < part.length; i++) {
          var id = rank[part[i] + "," + part[i + 1]];
          if (id !== undefined && id < bestId) { bestId = id; best = i; }
        }
        if (best < 0) break;
        var a = part[best], b = part[best + 1], out = [];
        for (var j = 0; j < part.length; j++) {
          if (j + 1 < part.length && part[j] === a && part[j + 1] === b) { out.push(bestId); j++; }
          else out.push(part[j]);
        }
        part = out;
      }
      ids = ids.concat(part);
    });
    return ids;
  }
  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function render() {
    var text = root.querySelector("textarea").value, n = Number(root.querySelector("select").value);
    var ids = encode(text, n), nBytes = new TextEncoder().encode(text).length;
    var boxes = ids.map(function (id, k) {
      var piece = new TextDecoder().decode(new Uint8Array(bytes[id])).replace(/ /g, "␣").replace(/\n/g, "⏎");
      return "<span style='" + BOX + ";background:" + PALETTE[k %% PALETTE.length] + "'>" + esc(piece) +
             "<br><small style='color:#555'>" + id + "</small></span>";
    });
    var view = root.querySelector(".lab-explorer-view");
    view.dataset.ids = JSON.stringify(ids);
    view.innerHTML = "<div style='line-height:2.2'>" + boxes.join("") + "</div><p>" + ids.length +
      " tokens for " + nBytes + " bytes (" + (ids.length / Math.max(nBytes, 1)).toFixed(2) + " tokens per byte)</p>";
  }
  root.querySelectorAll("textarea, select").forEach(function (el) { el.addEventListener("input", render); });
  render();
})();"""


class TokenizerExplorer:
    """Type text, see its tokens (coloured, with ids) and tokens per byte, for a chosen number of merges."""

    def __init__(self, bpe: BPEVocab, text: str, merge_counts: Sequence[int] = (0, 50, 250, 1000)):
        if bpe.special_tokens:
            raise ValueError("the page encoder does not parse special tokens: pass a vocabulary without them")
        self.bpe, self.text = bpe, text
        n = len(bpe.merges)
        self.merge_counts = [k for k in merge_counts if k < n] + [n]

    def _repr_html_(self) -> str:
        uid = f"ex-{uuid.uuid4().hex[:10]}"
        merges = [[a, b, new] for (a, b), new in sorted(self.bpe.merges.items(), key=lambda item: item[1])]
        payload = json.dumps({"merges": merges, "byte_ids": list(self.bpe.byte_ids)},
                             separators=(",", ":")).replace("</", "<\\/")
        default = self.merge_counts[-1]
        options = "".join(f'<option value="{k}"{" selected" if k == default else ""}>{k}</option>'
                          for k in self.merge_counts)
        ids = encode(self.text, self.bpe)  # the state shown before the script runs (and without JS)
        n_bytes = len(self.text.encode("utf-8"))
        first = (tokens_html(ids, self.bpe) + f"<p>{len(ids)} tokens for {n_bytes} bytes "
                 f"({len(ids) / max(n_bytes, 1):.2f} tokens per byte)</p>")
        script = _SCRIPT % {"uid": uid, "palette": json.dumps(PALETTE), "box": BOX}
        return f"""<div class="lab-explorer" id="{uid}" data-explorer="tokenizer">
<div class="lab-explorer-controls" style="display:flex;flex-wrap:wrap;gap:1em;margin-bottom:.5em">
<label style="flex:1 1 100%">text <textarea rows="2" style="width:100%;font-family:monospace">{
html.escape(self.text)}</textarea></label>
<label>merges used <select>{options}</select></label></div>
<div class="lab-explorer-view" aria-live="polite">{first}</div>
<script type="application/json" class="lab-explorer-data">{payload}</script>
<script>{script}</script>
</div>"""


def tokenizer_explorer(bpe: BPEVocab, text: str = "Hello world! Tokenizers split text into pieces.",
                       merge_counts: Sequence[int] = (0, 50, 250, 1000)) -> TokenizerExplorer:
    """The tokenizer explorer for ``bpe`` (a vocabulary without special tokens), starting with ``text``."""
    return TokenizerExplorer(bpe, text, merge_counts)
