"""The report's document: one list of blocks, rendered to markdown (index.md) and plain HTML (index.html)."""

from __future__ import annotations

import html
import re
from typing import Sequence


class Document:
    """Blocks (headings, paragraphs, tables, images, link lists) written out as markdown and as HTML.

    Both renderings come from the same blocks, so index.md and index.html always say the same. Text in
    `backticks` becomes <code> in HTML; table cells align per column ("l" or "r").
    """

    def __init__(self):
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def para(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence], align: str | None = None):
        self.blocks.append(("table", list(header), [list(map(str, r)) for r in rows], align or "l" * len(header)))

    def image(self, rel: str, caption: str):
        self.blocks.append(("img", rel, caption))

    def links(self, items: Sequence[tuple[str, str]]):
        self.blocks.append(("links", list(items)))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                _, header, rows, align = b
                cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(h) for h in header) + " |\n"
                           + "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|\n"
                           + "\n".join("| " + " | ".join(cell(c) for c in r) + " |" for r in rows))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
            elif b[0] == "links":
                out.append("\n".join(f"- [{text}]({href})" for text, href in b[1]))
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
               "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px}"
               "td.r{text-align:right}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555}</style>",
               "</head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{_inline_code(e(b[1]))}</p>")
            elif b[0] == "table":
                _, header, rows, align = b
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
                for r in rows:
                    out.append("<tr>" + "".join(f"<td class=\"{a}\">{e(c)}</td>" for c, a in zip(r, align)) + "</tr>")
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<figure><a href=\"{e(b[1])}\"><img src=\"{e(b[1])}\" alt=\"{e(b[2])}\"></a>"
                           f"<figcaption>{e(b[2])}</figcaption></figure>")
            elif b[0] == "links":
                out.append("<ul>" + "".join(f"<li><a href=\"{e(h)}\">{e(t)}</a></li>" for t, h in b[1]) + "</ul>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _inline_code(escaped: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


__all__ = ["Document"]
