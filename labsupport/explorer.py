"""Explorers that work in the online book without a kernel, and live in JupyterLab.

An :class:`Explorer` is a drawing function plus a few controls (sliders over a list of values,
dropdowns, checkboxes). Shown in a notebook or a built book page it renders **every combination of
control values once** (at build time, in the kernel that executes the page) and writes a
self-contained HTML block: the states travel inside the page, and a few lines of inline JavaScript
swap them when a control moves. No kernel, no request to any host, no widget manager. In JupyterLab
the same object also offers :meth:`Explorer.live`, an ``ipywidgets`` version that calls the drawing
function for each new value.

The page convention (the browser tests rely on it): the root element has class ``lab-explorer`` and a
``data-explorer`` name; every control is an ``input``/``select`` inside ``.lab-explorer-controls``;
the drawing sits in ``.lab-explorer-view``.

>>> ex = Explorer("square", lambda n, shout: f"<b>{n * n}{'!' if shout else ''}</b>",
...               [Slider("n", [1, 2, 3]), Toggle("shout")])
>>> len(ex.states())
6
>>> ex.states()['[1,1]']  # states are keyed by the index of each control's value
'<b>4!</b>'
>>> 'class="lab-explorer"' in ex._repr_html_()
True
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_STATES = 400  # a page carries every state: keep explorers small


@dataclass(frozen=True)
class Slider:
    """A slider over explicit ``values`` (numbers or labels); ``default`` is an index into them."""

    name: str
    values: Sequence[Any]
    label: str | None = None
    default: int = 0

    def options(self) -> list[Any]:
        return list(self.values)


@dataclass(frozen=True)
class Choice(Slider):
    """A dropdown over ``values`` (shown with ``str``); ``default`` is an index. Drawn as a ``<select>``."""


@dataclass(frozen=True)
class Toggle:
    """A checkbox; the drawing function receives ``True`` or ``False``."""

    name: str
    label: str | None = None
    default: bool = False

    def options(self) -> list[Any]:
        return [False, True]


Control = Slider | Choice | Toggle


def figure_html(fig: Any, alt: str, dpi: int = 90) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (the figure is closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def _key(indices: Sequence[int]) -> str:
    return json.dumps([int(i) for i in indices], separators=(",", ":"))  # as JSON.stringify writes it


class Explorer:
    """A drawing function over a grid of control values.

    ``draw(**values)`` returns an HTML string or a matplotlib figure (converted with
    :func:`figure_html`, using ``alt`` as its text alternative).
    """

    def __init__(self, name: str, draw: Callable[..., Any], controls: Sequence[Control], alt: str = ""):
        self.name, self.draw, self.controls, self.alt = name, draw, list(controls), alt or name
        n = 1
        for control in self.controls:
            n *= len(control.options())
        if n > MAX_STATES:
            raise ValueError(f"explorer {name!r} has {n} states; at most {MAX_STATES} fit in a page — "
                             "use fewer values per control")

    def _render(self, values: Sequence[Any]) -> str:
        out = self.draw(**{c.name: v for c, v in zip(self.controls, values)})
        return out if isinstance(out, str) else figure_html(out, self.alt)

    def states(self) -> dict[str, str]:
        """Every state's HTML, keyed by the JSON list of the index of each control's value."""
        options = [c.options() for c in self.controls]
        grid = itertools.product(*(range(len(o)) for o in options))
        return {_key(idx): self._render([o[i] for o, i in zip(options, idx)]) for idx in grid}

    def _control_html(self, control: Control, index: int) -> str:
        label = html.escape(control.label or control.name)
        if isinstance(control, Toggle):
            checked = " checked" if control.default else ""
            return (f'<label>{label} <input type="checkbox" data-index="{index}"{checked}></label>')
        if isinstance(control, Choice):
            opts = "".join(f'<option value="{i}"{" selected" if i == control.default else ""}>'
                           f"{html.escape(str(v))}</option>" for i, v in enumerate(control.values))
            return f'<label>{label} <select data-index="{index}">{opts}</select></label>'
        shown = html.escape(str(control.values[control.default]))
        return (f'<label>{label} <input type="range" min="0" max="{len(control.values) - 1}" step="1" '
                f'value="{control.default}" data-index="{index}"> <output>{shown}</output></label>')

    def _repr_html_(self) -> str:
        uid = f"ex-{uuid.uuid4().hex[:10]}"
        states = self.states()
        labels = [[str(v) for v in c.options()] for c in self.controls]
        first = [int(c.default) for c in self.controls]
        controls = "".join(self._control_html(c, i) for i, c in enumerate(self.controls))
        payload = json.dumps({"states": states, "labels": labels}).replace("</", "<\\/")
        return f"""<div class="lab-explorer" id="{uid}" data-explorer="{html.escape(self.name)}">
<div class="lab-explorer-controls" style="display:flex;flex-wrap:wrap;gap:1em;margin-bottom:.5em">{controls}</div>
<div class="lab-explorer-view" aria-live="polite">{states[_key(first)]}</div>
<script type="application/json" class="lab-explorer-data">{payload}</script>
<script>(function () {{
  var root = document.getElementById("{uid}");
  var data = JSON.parse(root.querySelector(".lab-explorer-data").textContent);
  var inputs = root.querySelectorAll("[data-index]");
  function update() {{
    var key = [];
    inputs.forEach(function (el) {{
      var i = Number(el.dataset.index), k = el.type === "checkbox" ? (el.checked ? 1 : 0) : Number(el.value);
      if (el.type === "range") el.parentNode.querySelector("output").textContent = data.labels[i][k];
      key[i] = k;
    }});
    var html = data.states[JSON.stringify(key)];
    if (html !== undefined) root.querySelector(".lab-explorer-view").innerHTML = html;
  }}
  inputs.forEach(function (el) {{ el.addEventListener("input", update); el.addEventListener("change", update); }});
}})();</script>
</div>"""

    def live(self) -> Any:
        """The same explorer as ``ipywidgets`` controls that call ``draw`` on each change (needs a kernel)."""
        import ipywidgets as widgets
        from IPython.display import HTML, display

        kwargs: dict[str, Any] = {}
        for c in self.controls:
            if isinstance(c, Toggle):
                kwargs[c.name] = widgets.Checkbox(value=c.default, description=c.label or c.name)
            elif isinstance(c, Choice):
                kwargs[c.name] = widgets.Dropdown(options=[(str(v), v) for v in c.values],
                                                  value=c.values[c.default], description=c.label or c.name)
            else:
                kwargs[c.name] = widgets.SelectionSlider(options=list(c.values), value=c.values[c.default],
                                                         description=c.label or c.name)

        def show(**values: Any) -> None:
            display(HTML(self._render([values[c.name] for c in self.controls])))

        return widgets.interactive(show, **kwargs)
