"""A briefing as PDF: the layout's blocks as HTML, laid out on A4 by WeasyPrint.

Route measured on this machine before choosing it:
- reportlab cannot use Debian's fonts-noto-cjk (CFF outlines: "postscript outlines are not supported");
- LibreOffice headless converting the Word file would add 84 MB of packages (259 MB installed) and a few
  seconds of office start-up per document;
- WeasyPrint (pip; Pango and fontconfig from Debian) writes the page in 0.7–0.9 s and embeds the Noto CJK fonts
  as subsets (pdffonts: emb yes, sub yes) — chosen.
"""

from __future__ import annotations

import base64
import html

from . import fonts
from .content import Briefing
from .layout import Block, blocks

CSS = f"""
@page {{
  size: A4;
  margin: 37mm 26mm 35mm 28mm;
  @bottom-center {{ content: "— " counter(page) " —"; font-family: "{fonts.SERIF}"; font-size: 14pt; }}
}}
html {{ font-family: "{fonts.SERIF}"; font-size: 16pt; line-height: 28.6pt; color: #000; }}
body {{ margin: 0; }}
h1.title {{ font-family: "{fonts.SERIF}"; font-weight: 700; font-size: 22pt; line-height: 35pt; text-align: center;
  margin: 0 0 6pt 0; }}
p.subtitle {{ text-align: center; text-indent: 0; margin: 0 0 14pt 0; }}
p {{ text-indent: 2em; margin: 0; text-align: justify; }}
h2 {{ font-family: "{fonts.SANS}"; font-weight: 400; font-size: 16pt; text-indent: 2em; margin: 6pt 0 0 0; }}
h3 {{ font-family: "{fonts.SERIF}"; font-weight: 700; font-size: 16pt; text-indent: 2em; margin: 0; }}
table {{ font-family: "{fonts.SANS}"; font-size: 10.5pt; line-height: 15pt; border-collapse: collapse; width: 100%;
  margin: 4pt 0 8pt 0; page-break-inside: auto; }}
thead {{ display: table-header-group; }}
tr {{ page-break-inside: avoid; }}
th {{ font-weight: 700; background: #F2F2F2; }}
th, td {{ border: 0.6pt solid #000; padding: 2pt 4pt; }}
td.r {{ text-align: right; }}
figure {{ margin: 4pt 0 10pt 0; page-break-inside: avoid; text-align: center; }}
figure img {{ width: 100%; }}
figcaption {{ font-family: "{fonts.SANS}"; font-size: 10.5pt; line-height: 15pt; }}
p.annexref {{ margin-top: 14pt; }}
p.sign {{ text-align: right; text-indent: 0; margin: 14pt 2em 0 0; }}
p.note {{ font-family: "{fonts.SANS}"; font-size: 9pt; line-height: 14pt; text-indent: 0; margin-top: 10pt;
  color: #333; border-top: 0.6pt solid #999; padding-top: 4pt; }}
p.annex {{ font-family: "{fonts.SANS}"; text-indent: 0; }}
.break {{ page-break-before: always; }}
"""


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _table(b: Block) -> str:
    cols = "".join(f'<col style="width:{w / sum(b.widths) * 100:.1f}%">' for w in b.widths) if b.widths else ""
    head = "".join(f"<th>{_esc(h)}</th>" for h in b.headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="{a}">{_esc(v)}</td>' for v, a in zip(row, b.aligns or ["l"] * len(row))) + "</tr>"
        for row in b.rows)
    return f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(briefing: Briefing) -> str:
    parts = []
    for b in blocks(briefing):
        if b.kind == "pagebreak":  # the annex title starts its page (class "break")
            continue
        if b.kind == "title":
            parts.append(f'<h1 class="title">{_esc(b.text)}</h1>')
        elif b.kind == "subtitle":
            parts.append(f'<p class="subtitle">{_esc(b.text)}</p>')
        elif b.kind == "para":
            klass = "annexref" if b.text.startswith("附件：") else ""
            parts.append(f'<p class="{klass}">{_esc(b.text)}</p>')
        elif b.kind == "h1":
            parts.append(f"<h2>{_esc(b.text)}</h2>")
        elif b.kind == "h2":
            parts.append(f"<h3>{_esc(b.text)}</h3>")
        elif b.kind == "table":
            parts.append(_table(b))
        elif b.kind == "image":
            data = base64.b64encode(b.image).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(b.text)}">'
                         f"<figcaption>{_esc(b.text)}</figcaption></figure>")
        elif b.kind == "sign":
            parts.append(f'<p class="sign">{_esc(b.text)}</p>')
        elif b.kind == "note":
            parts.append(f'<p class="note">{_esc(b.text)}</p>')
        elif b.kind == "annex_title":
            parts.append(f'<p class="annex break">{_esc(b.text)}</p>')
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_esc(briefing.title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def to_pdf(briefing: Briefing) -> bytes:
    fonts.check()  # a missing font is one plain sentence, never a PDF of empty boxes
    from weasyprint import HTML

    return HTML(string=to_html(briefing)).write_pdf()  # the document's <title> becomes the PDF's title
