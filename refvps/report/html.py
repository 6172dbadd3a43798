"""One self-contained HTML page: figures inlined as base64 PNGs, tables as HTML tables."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
"""


def image_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def table_html(table: pd.DataFrame, digits: int = 4) -> str:
    return table.to_html(index=False, border=0, na_rep="-", escape=True,
                         float_format=lambda v: f"{v:.{digits}f}")


def render_page(title: str, header: list[str], sections: list[tuple[str, list[str]]]) -> str:
    """``sections``: (heading, HTML fragments) in page order; ``header``: lines under the title."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="note">{html.escape(line)}</p>' for line in header]
    for heading, fragments in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts += fragments
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'
