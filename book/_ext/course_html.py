"""Small fixes to the built pages so that they work offline and log no error in a browser.

- sphinx-thebe (loaded by Jupyter Book even with thebe off) declares ``const THEBE_JS_URL`` twice on
  every page (an uncaught SyntaxError) and names a CDN; the course launches no thebe, so its scripts go.
- pydata-sphinx-theme logs "Got invalid theme mode" on a first visit unless a default mode is set.
"""

from __future__ import annotations


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    context["default_mode"] = context.get("default_mode") or "auto"
    scripts = context.get("script_files")
    if scripts is None:
        return
    kept = []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body", "") or ""
        name = str(getattr(script, "filename", script) or "")
        if "THEBE_JS_URL" in body or "thebe" in name:
            continue
        kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
