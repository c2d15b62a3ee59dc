"""The explorer's two faces: the page's precomputed states (no kernel) and the live ipywidgets version."""

from __future__ import annotations

import pytest

from labsupport.explorer import MAX_STATES, Choice, Explorer, Slider, Toggle


def _explorer(calls: list[tuple]) -> Explorer:
    def draw(n: int, mode: str, shout: bool) -> str:
        calls.append((n, mode, shout))
        return f"<b>{n * n}{mode}{'!' if shout else ''}</b>"

    return Explorer("demo", draw, [Slider("n", [1, 2, 3], default=1), Choice("mode", ["a", "b"]), Toggle("shout")])


def test_page_carries_every_state_and_its_controls():
    ex = _explorer([])
    states = ex.states()
    assert len(states) == 3 * 2 * 2
    assert states["[2,1,1]"] == "<b>9b!</b>"
    page = ex._repr_html_()
    assert 'data-explorer="demo"' in page and page.count("<select") == 1 and "<b>4a</b>" in page  # the defaults


def test_live_controls_draw_what_the_page_shows():
    calls: list[tuple] = []
    ex = _explorer(calls)
    widget = ex.live()
    assert calls == [(2, "a", False)]  # drawn once with the defaults
    n, mode, shout = widget.children[:3]
    n.value, mode.value, shout.value = 3, "b", True
    assert calls[-1] == (3, "b", True)
    assert ex.draw(*calls[-1]) == ex.states()["[2,1,1]"]  # the live drawing is the page's state


def test_too_many_states_are_refused_with_the_count():
    with pytest.raises(ValueError, match=f"at most {MAX_STATES}"):
        Explorer("big", lambda a, b: "", [Slider("a", range(100)), Slider("b", range(10))])
