"""The Markdown of ``kmed report`` pages as one HTML page (``kmed report … --html``).

Only what those pages use: headings, pipe tables, lists, images, bold and code spans. Images stay
as relative links to the PNGs beside the page.
"""

from __future__ import annotations

import html
import re


def to_html(markdown: str, title: str) -> str:
    """The subset of Markdown these pages use (headings, tables, lists, images, code spans) as one HTML page."""
    def inline(text: str) -> str:
        text = html.escape(text.replace("\\|", "|"))
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

    body, table, items = [], [], []

    def flush() -> None:
        if table:
            head, *rest = table
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rest) + "</table>")
            table.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in markdown.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] if line.startswith("|") else None
        if cells is not None:
            if not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        flush()
        image = re.fullmatch(r"!\[(.*)\]\((.+)\)", line.strip())
        heading = re.match(r"(#{1,4}) (.*)", line)
        if image:
            body.append(f'<p><img src="{html.escape(image[2])}" alt="{html.escape(image[1])}"></p>')
        elif heading:
            body.append(f"<h{len(heading[1])}>{inline(heading[2])}</h{len(heading[1])}>")
        elif line.startswith("- "):
            items.append(line[2:])
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush()
    style = ("body{font-family:'NanumGothic','Noto Sans KR',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    return (f'<!doctype html>\n<html lang="ko"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
