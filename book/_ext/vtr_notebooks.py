"""What the book does with its executed notebooks.

1. Code is collapsed by default. Every code cell that shows its source gets myst-nb's
   `hide-input` behaviour (a "Show code cell source" toggle above the collapsed code), as if each
   cell were tagged `hide-input`: a post-transform sets the cell's hide mode before myst-nb's own
   transform wraps the source in a <details> element. A cell tagged `show-input` keeps its code
   open; `remove-input`/`remove-cell` still remove it; `hide-output` becomes input+output hidden.

2. Every chapter offers its executed notebook for download next to its source. The download
   menu of sphinx-book-theme lists the page's source (.md) always, but the executed .ipynb only
   when a launch service (Binder, Colab, ...) is configured, which this book does not use. Here
   the executed notebook is written to <html>/_sources/<page>.ipynb and the theme's ".ipynb"
   entry is switched on for the page. The notebook is taken from the execution cache (the
   chapter's source, read as myst-nb reads it, merged with its cached outputs; outputs that only
   carry glued values are left out): the copy myst-nb writes to <build>/jupyter_execute/ has no
   outputs when they came from the cache (myst-nb 1.4 writes the notebook it read, not the one
   merged with the cache), so it is used only when the cache has no match.

3. Execution times. myst-nb records, per notebook, how long its execution took. With the
   execution cache this is the time of the execution that filled the cache (jupyter-cache keeps it
   with the cached notebook), also when a later build only loads the outputs: the
   `{nb-exec-table}` directive (on the "How this book is built" page) and <html>/exec-times.json,
   written here after reading, both show it. exec-times.json also says, per chapter, whether it
   was executed in this build ("executed_in_this_build") or came from the cache.
   `python .ci/exec_times.py book/_build` prints it as the README's Markdown table.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

EXEC_TIMES = "exec-times.json"
_HIDE = {None: "input", "": "input", "output": "input+output"}  # other modes already hide the input


class CollapseCodeCells(SphinxPostTransform):
    default_priority = 198  # myst-nb's HideInputCells (199) then builds the toggles
    formats = ("html",)

    def run(self, **kwargs) -> None:
        config = self.env.mystnb_config
        for node in self.document.findall(nodes.container):
            if node.get("nb_element") != "cell_code" or not node.children:
                continue
            if node.children[0].get("nb_element") != "cell_code_source":
                continue  # no source shown (remove-input)
            tags = (node.get("cell_metadata") or {}).get("tags", [])
            mode = node.get("hide_mode")
            if "show-input" in tags or mode not in _HIDE:
                continue
            node["hide_mode"] = _HIDE[mode]
            node.setdefault("prompt_show", config.code_prompt_show)
            node.setdefault("prompt_hide", config.code_prompt_hide)
            if "tag_hide-input" not in node["classes"]:
                node["classes"].append("tag_hide-input")


def _exec_data(env, docname):
    from myst_nb.sphinx_ import NbMetadataCollector

    return NbMetadataCollector.get_exec_data(env, docname)


def executed_notebook(env, docname):
    """The chapter's notebook with the outputs of its cached execution, or None without a match."""
    import nbformat
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    config = env.mystnb_config
    if not config.execution_cache_path:
        return None
    path = env.doc2path(docname)
    text = Path(path).read_text(encoding="utf8")
    reader = create_nb_reader(str(path), env.myst_config, config, text)
    if reader is None:
        return None
    notebook = reader.read(text)
    try:
        _, merged = get_cache(config.execution_cache_path).merge_match_into_notebook(notebook)
    except KeyError:
        return None
    for cell in merged.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("metadata", {}).get("scrapbook", {}).get("mime_prefix"))]
    return nbformat.writes(merged)


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    if doctree is None or not _exec_data(app.env, pagename):
        return
    dest = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    content = executed_notebook(app.env, pagename)
    if content is not None:
        dest.write_text(content, encoding="utf8")
    else:
        src = Path(app.env.mystnb_config.output_folder) / f"{pagename}.ipynb"
        if not src.is_file():
            logger.warning(f"executed notebook {src} not found: the page offers no .ipynb",
                           location=pagename)
            return
        shutil.copyfile(src, dest)
    context["ipynb_source"] = f"{pagename}.ipynb"  # read by sphinx-book-theme's download menu


def _build_started(app) -> None:
    app.vtr_build_started = time.time()


def exec_times(app, env) -> list[dict]:
    from vtr_artefacts import book_order

    rows = []
    started = getattr(app, "vtr_build_started", time.time())
    for doc in book_order(env):
        data = _exec_data(env, doc)
        if not data:
            continue
        mtime = data.get("mtime")
        rows.append({
            "docname": doc,
            "title": env.titles[doc].astext() if doc in env.titles else doc,
            "seconds": data.get("runtime"),
            "executed_at": datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds")
            if mtime else None,
            "executed_in_this_build": bool(mtime and mtime >= started - 1),
            "method": data.get("method"),
            "succeeded": data.get("succeeded"),
        })
    return rows


def _write_exec_times(app, env) -> None:
    if app.builder.format != "html":
        return
    rows = exec_times(app, env)
    out = Path(app.outdir) / EXEC_TIMES
    profile = os.environ.get("VTR_PROFILE") or "testbed"
    out.write_text(json.dumps({"smoke": _smoke(), "profile": profile, "chapters": rows}, indent=1) + "\n")


def _smoke() -> bool:
    import os

    return os.environ.get("VTR_SMOKE", "") not in ("", "0")


EXEC_TABLE_CLASS = "vtr-exec-table"


class MarkExecTable(SphinxPostTransform):
    """Puts myst-nb's `{nb-exec-table}` in a container of class `vtr-exec-table`. The table is built
    when the page is written, after Sphinx has numbered the book's tables, so it cannot have a
    number (a caption without one makes Sphinx warn); the browser checks know it by this class and
    the page introduces it in its prose."""

    default_priority = 7  # before myst-nb's ExecutionStatsPostTransform (8) replaces the placeholder

    def run(self, **kwargs) -> None:
        from myst_nb.ext.execution_tables import ExecutionStatsNode

        for node in list(self.document.findall(ExecutionStatsNode)):
            box = nodes.container(classes=[EXEC_TABLE_CLASS])
            node.replace_self(box)
            box += node


def setup(app):
    app.setup_extension("myst_nb")
    app.add_post_transform(CollapseCodeCells)
    app.add_post_transform(MarkExecTable)
    # before sphinx-book-theme builds its header buttons (priority 501)
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("builder-inited", _build_started)
    app.connect("env-check-consistency", _write_exec_times)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
