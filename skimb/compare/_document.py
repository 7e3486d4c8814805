"""The report as a list of blocks, rendered once as Markdown (``report.md``) and once as a single
self-contained HTML file (``report.html``: inline CSS, figures as base64 data URIs), so that the
two always say the same thing.

Text in blocks may use two bits of Markdown, which the HTML renders too: backticks for code and
double asterisks for bold.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Heading", "Paragraph", "Bullets", "Table", "Figure", "to_markdown", "to_html"]


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list


@dataclass
class Table:
    header: list
    #: a row shorter than the header ends in one cell spanning the remaining columns
    rows: list


@dataclass
class Figure:
    #: a PNG file in the report folder
    file: str
    alt: str


# --------------------------------------------------------------------------- Markdown
def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks) -> str:
    lines = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += ["| " + " | ".join(map(_md_cell, block.header)) + " |", "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows] + [""]
        elif isinstance(block, Figure):
            lines += [f"![{block.alt}]({block.file})", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f2f2f2; padding: 0 .25em; border-radius: 3px; }
figure { margin: 1em 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
"""


def _inline(text) -> str:
    out = html.escape(str(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _html_table(table) -> list:
    width = len(table.header)
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in table.header) + "</tr>"]
    for row in table.rows:
        cells = [f"<td>{_inline(c)}</td>" for c in row[:-1]]
        span = max(1, width - len(row) + 1)
        cells.append(f'<td colspan="{span}">{_inline(row[-1])}</td>' if span > 1 else f"<td>{_inline(row[-1])}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return out + ["</table>"]


def _html_figure(figure, folder: Path) -> list:
    path = folder / figure.file
    if not path.is_file():  # not drawn (no matplotlib): the HTML keeps no broken reference
        return []
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return [f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.alt)}">'
            f"<figcaption>{_inline(figure.alt)}</figcaption></figure>"]


def to_html(blocks, *, folder, title) -> str:
    """One HTML page with everything in it: it opens the same from any folder, or offline."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{_inline(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body += ["<ul>"] + [f"<li>{_inline(item)}</li>" for item in block.items] + ["</ul>"]
        elif isinstance(block, Table):
            body += _html_table(block)
        elif isinstance(block, Figure):
            body += _html_figure(block, Path(folder))
    head = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    return "\n".join(head + body + ["</body>", "</html>", ""])
