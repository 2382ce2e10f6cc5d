"""A small document model, rendered as Markdown (summary.md) and HTML (report.html).

The report is built once as blocks, so both files say the same things in the same
order; only the rendering differs. Text is plain (escaped for HTML, table pipes
escaped for Markdown); `cls` and `id` are HTML hooks for style and for the test that
measures what is above the fold.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence, Union


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    id: str = ""
    cls: str = ""


@dataclass(frozen=True)
class Para:
    text: str
    cls: str = ""
    strong: bool = False


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]
    cls: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    cls: str = ""


@dataclass(frozen=True)
class Pre:
    text: str
    cls: str = ""


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class Group:
    """A block of blocks: an HTML <section>/<article>, or folded in <details> when summary is set."""

    blocks: tuple["Block", ...]
    cls: str = ""
    id: str = ""
    tag: str = "section"
    summary: str = ""


Block = Union[Heading, Para, Items, Table, Pre, Image, Group]


def group(blocks: Sequence[Block], **kw: str) -> Group:
    return Group(tuple(blocks), **kw)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], cls: str = "") -> Table:
    return Table(tuple(headers), tuple(tuple(str(c) for c in r) for r in rows), cls)


# ---------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _md(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text, ""]
    if isinstance(block, Para):
        return [f"**{block.text}**" if block.strong else block.text, ""]
    if isinstance(block, Items):
        return [f"- {item}" for item in block.items] + [""]
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |", "|" + "---|" * len(block.headers)]
        return lines + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows] + [""]
    if isinstance(block, Pre):
        fence = "````" if "```" in block.text else "```"
        return [fence, block.text.rstrip("\n"), fence, ""]
    if isinstance(block, Image):
        return [f"![{block.alt}]({block.src})", ""]
    inner = [line for b in block.blocks for line in _md(b)]
    if block.summary:
        return [f"<details><summary>{html.escape(block.summary)}</summary>", "", *inner, "</details>", ""]
    return inner


def markdown(blocks: Sequence[Block]) -> str:
    return "\n".join(line for b in blocks for line in _md(b)).rstrip("\n") + "\n"


# ---------------------------------------------------------------- HTML


def _attrs(cls: str = "", id: str = "") -> str:
    return (f" id='{html.escape(id)}'" if id else "") + (f" class='{html.escape(cls)}'" if cls else "")


def _html(block: Block) -> str:
    e = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}{_attrs(block.cls, block.id)}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        text = f"<b>{e(block.text)}</b>" if block.strong else e(block.text)
        return f"<p{_attrs(block.cls)}>{text}</p>"
    if isinstance(block, Items):
        return f"<ul{_attrs(block.cls)}>" + "".join(f"<li>{e(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{e(h)}</th>" for h in block.headers)
        body = "".join("<tr>" + "".join(f"<td class='{_status_class(c)}'>{e(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        return f"<table{_attrs(block.cls)}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Pre):
        return f"<pre{_attrs(block.cls)}>{e(block.text)}</pre>"
    if isinstance(block, Image):
        return (f"<img src='{e(block.src)}' alt='{e(block.alt)}' width='{block.width}' "
                f"height='{block.height}'>")
    inner = "".join(_html(b) for b in block.blocks)
    if block.summary:
        return f"<details{_attrs(block.cls, block.id)}><summary>{e(block.summary)}</summary>{inner}</details>"
    return f"<{block.tag}{_attrs(block.cls, block.id)}>{inner}</{block.tag}>"


def _status_class(cell: str) -> str:
    """Colour a cell by the status it starts with."""
    word = cell.split(" ", 1)[0].rstrip(":")
    return word if word in ("pass", "fail", "error", "skip") else ""


STYLE = """
body{font-family:sans-serif;margin:1em 2em;max-width:90em;line-height:1.35}
p{margin:.35em 0} ul{margin:.3em 0}
h1{margin:.2em 0;font-size:1.6em} h2{margin:.8em 0 .3em;border-bottom:1px solid #ccc}
h3{margin:.6em 0 .2em;font-size:1.1em} h4{margin:.3em 0;font-size:1em}
#verdict{padding:.5em 1em;border-radius:4px;border-left:8px solid #888}
#verdict.fail,#verdict.error{background:#fdecec;border-color:#c00} #verdict.pass{background:#ecf8ec;border-color:#080}
#verdict ul{margin:.2em 0} #verdict p{margin:.25em 0}
.finding{border:1px solid #ddd;border-left:5px solid #c00;padding:.2em .8em;margin:.4em 0}
.finding.unconfirmed{border-left-color:#e90} .finding p{margin:.2em 0}
pre{background:#f4f4f4;padding:6px;overflow:auto;font-size:85%}
.finding pre{max-height:8em;margin:.3em 0}
table{border-collapse:collapse;margin:.3em 0} td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;
vertical-align:top;text-align:left} td.fail,td.error{background:#fcc} td.pass{background:#dfd} td.skip{background:#eee}
.note{color:#a40} details{margin:.3em 0} summary{cursor:pointer}
"""


def html_page(title: str, blocks: Sequence[Block]) -> str:
    body = "\n".join(_html(b) for b in blocks)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
