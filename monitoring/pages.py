"""Static HTML pages for analysts: one small Jinja template, no JavaScript, images side by side.

Every report page (SHAP, local explanation, policy evaluation, the index) is plain HTML with
relative links and PNG images, so it opens from a file share or a zip without Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1em; }
.alarm { color: #b00; font-weight: bold; } .ok { color: #070; font-weight: bold; }
.muted { color: #777; font-size: 0.85em; }
"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>{{ style }}</style></head><body>
<h1>{{ title }}</h1>
{% if subtitle %}<p class="muted">{{ subtitle }}</p>{% endif %}
{% for section in sections %}
<h2>{{ section.heading }}</h2>
{% if section.text %}<p>{{ section.text }}</p>{% endif %}
{% if section.table %}<table>
<tr>{% for h in section.table.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in section.table.rows %}<tr>
{% for cell in row %}<td>
{%- if cell is mapping %}<a href="{{ cell.href }}">{{ cell.text }}</a>
{%- else %}{{ cell }}{% endif -%}
</td>{% endfor %}
</tr>{% endfor %}
</table>{% endif %}
{% if section.images %}<div class="grid">{% for image in section.images %}
<figure><a href="{{ image.href or image.src }}">
<img src="{{ image.src }}" alt="{{ image.caption }}"></a>
<figcaption class="muted">{{ image.caption }}</figcaption></figure>
{% endfor %}</div>{% endif %}
{% endfor %}
</body></html>
"""


def write_page(path: Path, title: str, sections: list[dict[str, Any]], subtitle: str = "") -> Path:
    """Render a page of sections (heading, text, lines, table, images) to ``path``."""
    environment = Environment(autoescape=select_autoescape(default=True))
    html = environment.from_string(TEMPLATE).render(
        title=title, subtitle=subtitle, sections=sections, style=STYLE
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)
    return path
