"""The HTML of the run report and the model card: one page style, tables, images."""
from __future__ import annotations

import html
from typing import Any, Optional, Sequence

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; padding: 0 1.5em;
       max-width: 1500px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } img { max-width: 100%; border: 1px solid #eee; }
.ok { color: #1a7f37; } .bad { color: #b42318; } .muted { color: #666; font-size: 13px; }
"""


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def table(header: Optional[Sequence[str]], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; numbers right-aligned; no header row when `header` is None."""
    head = ("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
            if header else "")
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell(v)}</td>' if isinstance(v, (int, float)) else f"<td>{cell(v)}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def img(name: str, alt: str) -> str:
    return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>'
