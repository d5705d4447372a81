"""The `glue:table` directive: a table glued by `vtr.chapters.figures.save_table`, shown as a
numbered, captioned, labelled table.

    ```{glue:table} tab-rank-by-checkpoint

    Caption (one paragraph; roles such as {glue:text} and {cite} work).
    ```

The directive looks the label up in the notebook's glue data (same document only, like
`glue:figure`), and builds an ordinary docutils table: a `table` node whose first child is its
`title` (the caption), a header row and one row per DataFrame row. Sphinx treats it like the table
of a `{table}` or `{list-table}` directive: numfig numbers it ("Table 2"), the label is its MyST
name (so {numref} and {ref} work from any chapter), and the HTML theme puts it in a horizontally
scrolling container when it is wider than the page.

Options: `:name:` (default: the glue key), `:class:`, `:align:` (left, center, right).
The caption is the directive's content, else the `caption` given to save_table; a table without
either is an error (Sphinx numbers captioned tables only).

Why not the alternatives: `{glue:figure}` numbers the table as a figure; a `{table}` directive
around `{glue:md}` needs a Markdown rendering of the DataFrame (tabulate) and re-parses the cells
as Markdown; the cell-level `mystnb: figure` metadata also makes a figure.
"""
from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives as spec
from sphinx.util.docutils import SphinxDirective

TABLE_MIME = "application/vnd.vtr.table+json"  # = vtr.chapters.figures.TABLE_MIME


def _warning(directive, text: str) -> list[nodes.Node]:
    # a reported (not raised) warning: the build continues and fails at the end under -W
    return [directive.state.document.reporter.warning(text, line=directive.lineno)]


class GlueTableDirective(SphinxDirective):
    required_arguments = 1  # the glue key (= the label given to save_table)
    final_argument_whitespace = False
    has_content = True
    option_spec = {
        "name": spec.unchanged,
        "class": spec.class_option,
        "align": lambda arg: spec.choice(arg, ("left", "center", "right")),
    }

    def run(self) -> list[nodes.Node]:
        from myst_nb.core.variables import RetrievalError
        from myst_nb.ext.glue.utils import retrieve_glue_data

        key = self.arguments[0]
        try:
            data = retrieve_glue_data(self.state.document, key).data
        except RetrievalError as exc:
            return _warning(self, f"glue:table {key!r}: {exc}")
        payload = data.get(TABLE_MIME)
        if not isinstance(payload, dict):
            return _warning(self, f"glue:table {key!r}: not a table glued by save_table "
                                  f"(no {TABLE_MIME} data; glue:figure/glue:any show other objects)")

        table = nodes.table(classes=["vtr-table", "colwidths-auto"] + self.options.get("class", []))
        if "align" in self.options:
            table["align"] = self.options["align"]
        self.set_source_info(table)
        title = self._caption(payload)
        if title is None:
            return _warning(self, f"glue:table {key!r}: a table needs a caption (give the directive "
                                  "a paragraph, or save_table(..., caption=...))")
        if isinstance(title, list):  # a warning
            return title
        table += title
        table += self._body(payload)
        self.options.setdefault("name", key)
        self.add_name(table)
        return [table]

    def _caption(self, payload):
        if self.content:
            holder = nodes.Element()
            self.state.nested_parse(self.content, self.content_offset, holder)
            if len(holder) != 1 or not isinstance(holder[0], nodes.paragraph):
                return _warning(self, "glue:table: the caption must be one paragraph")
            para = holder[0]
            title = nodes.title(para.rawsource, "", *para.children)
            title.source, title.line = para.source, para.line
            return title
        if payload.get("caption"):
            text = str(payload["caption"])
            textnodes, messages = self.state.inline_text(text, self.lineno)
            return nodes.title(text, "", *textnodes, *messages)
        return None

    @staticmethod
    def _body(payload) -> nodes.tgroup:
        columns, numeric = list(payload["columns"]), list(payload["numeric"])
        tgroup = nodes.tgroup(cols=len(columns))
        for _ in columns:
            tgroup += nodes.colspec(colwidth=1)

        def row_of(cells, header: bool) -> nodes.row:
            row = nodes.row()
            for text, num in zip(cells, numeric):
                entry = nodes.entry(classes=["vtr-num"] if num else [])
                entry += nodes.paragraph(text=str(text))
                row += entry
            return row

        thead = nodes.thead()
        thead += row_of(columns, True)
        tbody = nodes.tbody()
        for cells in payload["rows"]:
            tbody += row_of(cells, False)
        tgroup += thead
        tgroup += tbody
        return tgroup


def setup(app):
    # `glue` is myst-nb's domain ({glue:figure}, {glue:md}, ...): load it first.
    app.setup_extension("myst_nb")
    app.add_directive_to_domain("glue", "table", GlueTableDirective)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
