"""A briefing as a Word document (python-docx): the layout's blocks on A4 portrait, GB/T 9704 margins
(top 37 mm, bottom 35 mm, left 28 mm, right 26 mm), 22 pt title, 16 pt body with a two-character indent, page
numbers "— 1 —" in the footer. Fonts are named, not embedded (a Noto CJK font file is 19–27 MB a
weight); word/fontTable.xml gives each Noto font the alternate name of the CJK font every Chinese Windows has
(w:altName 宋体 for the serif, 黑体 for the sans: ECMA-376 has it tried before metric-based substitution) and its
GB2312 charset, panose and code-page signature, so an office PC without Noto shows 宋体/黑体 and no font is
missing, while here (fonts-noto-cjk installed) the Noto fonts themselves are used."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from lxml import etree

from .content import Briefing
from .fonts import SANS, SERIF
from .layout import Block, blocks

BODY_PT, TITLE_PT, TABLE_PT, NOTE_PT = 16, 22, 10.5, 9
LINE_PT = 28.6  # 22 lines on the 225 mm type area
TYPE_WIDTH_MM = 156
# word/fontTable.xml entries of the two fonts the document names: the alternate name (a font of every Chinese
# Windows and WPS install), charset 86 (GB2312), family, pitch, and panose and signature as Noto's OS/2 tables
# give them (fontTools on Debian's fonts-noto-cjk 20220127: its code pages include GB2312, bit 18 of csb0)
FONT_TABLE = {
    SERIF: {"altName": "宋体", "panose1": "02020400000000000000", "family": "roman"},
    SANS: {"altName": "黑体", "panose1": "020B0500000000000000", "family": "swiss"},
}
FONT_SIG = {"usb0": "30000083", "usb1": "2BDF3C10", "usb2": "00000016", "usb3": "00000000", "csb0": "602E0107",
            "csb1": "00000000"}


def _font(run, family: str, size: float, bold: bool = False, color: RGBColor | None = None) -> None:
    run.font.name = family
    run.font.size = Pt(size)
    run.font.bold = bold
    if color is not None:
        run.font.color.rgb = color
    rfonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        rfonts.set(qn(attr), family)


def _para(doc, text: str, family: str = SERIF, size: float = BODY_PT, bold: bool = False, indent: bool = True,
          align=WD_ALIGN_PARAGRAPH.JUSTIFY, line: float | None = LINE_PT, before: float = 0, after: float = 0):
    p = doc.add_paragraph()
    fmt = p.paragraph_format
    fmt.alignment = align
    fmt.first_line_indent = Pt(size * 2) if indent else None
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    if line:
        fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        fmt.line_spacing = Pt(line)
    _font(p.add_run(text), family, size, bold)
    return p


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def _shade(cell, fill: str) -> None:
    tc_pr = cell._tc.get_or_add_tcPr()
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


def _table(doc, b: Block) -> None:
    table = doc.add_table(rows=1, cols=len(b.headers))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    total = sum(b.widths) if b.widths else len(b.headers)
    widths = [Mm(TYPE_WIDTH_MM * (w / total)) for w in (b.widths or [1] * len(b.headers))]
    aligns = b.aligns or ["l"] * len(b.headers)

    def fill(cells, values, header: bool):
        for cell, value, align, width in zip(cells, values, aligns, widths):
            cell.width = width
            p = cell.paragraphs[0]
            p.paragraph_format.alignment = (WD_ALIGN_PARAGRAPH.CENTER if header else
                                            WD_ALIGN_PARAGRAPH.RIGHT if align == "r" else WD_ALIGN_PARAGRAPH.LEFT)
            p.paragraph_format.space_before = p.paragraph_format.space_after = Pt(0)
            _font(p.add_run(value), SANS, TABLE_PT, bold=header)
            if header:
                _shade(cell, "F2F2F2")

    fill(table.rows[0].cells, b.headers, True)
    _repeat_header(table.rows[0])
    for row in b.rows:
        fill(table.add_row().cells, row, False)
    _para(doc, "", size=6, line=None, indent=False)  # a little air after the table


def _page_number(section) -> None:
    p = section.footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(p.add_run("— "), SERIF, 14)
    run = p.add_run()
    _font(run, SERIF, 14)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        else:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._r.append(el)
    _font(p.add_run(" —"), SERIF, 14)


def _font_table(doc) -> None:
    """Declare the document's two fonts in word/fontTable.xml with their fallbacks (see the module docstring)."""
    part = next(p for p in doc.part.package.iter_parts() if str(p.partname) == "/word/fontTable.xml")
    root = etree.fromstring(part.blob)
    for name, spec in FONT_TABLE.items():
        for old in root.findall(qn("w:font")):
            if old.get(qn("w:name")) == name:
                root.remove(old)
        font = etree.SubElement(root, qn("w:font"))
        font.set(qn("w:name"), name)
        # the schema's order: altName, panose1, charset, family, pitch, sig
        for tag, value in (("altName", spec["altName"]), ("panose1", spec["panose1"]), ("charset", "86"),
                           ("family", spec["family"]), ("pitch", "variable")):
            etree.SubElement(font, qn(f"w:{tag}")).set(qn("w:val"), value)
        sig = etree.SubElement(font, qn("w:sig"))
        for key, value in FONT_SIG.items():
            sig.set(qn(f"w:{key}"), value)
    part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def to_docx(briefing: Briefing) -> bytes:
    doc = Document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Mm(210), Mm(297)
    sec.top_margin, sec.bottom_margin, sec.left_margin, sec.right_margin = Mm(37), Mm(35), Mm(28), Mm(26)
    sec.footer_distance = Mm(20)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = SERIF, Pt(BODY_PT)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), SERIF)
    doc.core_properties.title = briefing.title
    doc.core_properties.language = "zh-CN"
    # the document's languages (python-docx's template says en-US for East Asian text too): Word picks the
    # fonts and the width of ambiguous punctuation (“”、…) by them
    for lang in doc.styles.element.iter(qn("w:lang")):
        lang.set(qn("w:val"), "zh-CN")
        lang.set(qn("w:eastAsia"), "zh-CN")
    doc.core_properties.author = "帮扶责任人监测看板"
    _page_number(sec)
    _font_table(doc)

    page_break = False
    for b in blocks(briefing):
        if b.kind == "pagebreak":
            page_break = True
            continue
        if page_break:
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
            page_break = False
        if b.kind == "title":
            _para(doc, b.text, SERIF, TITLE_PT, bold=True, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER, line=35,
                  after=4)
        elif b.kind == "subtitle":
            _para(doc, b.text, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER, after=12)
        elif b.kind == "para":
            _para(doc, b.text, before=12 if b.text.startswith("附件：") else 0)
        elif b.kind == "h1":
            _para(doc, b.text, SANS, BODY_PT, before=4)
        elif b.kind == "h2":
            _para(doc, b.text, SERIF, BODY_PT, bold=True)
        elif b.kind == "table":
            _table(doc, b)
        elif b.kind == "image":
            p = doc.add_paragraph()
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
            p.add_run().add_picture(io.BytesIO(b.image), width=Mm(TYPE_WIDTH_MM))
            _para(doc, b.text, SANS, TABLE_PT, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER, line=None, after=8)
        elif b.kind == "sign":
            p = _para(doc, b.text, indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT, before=12)
            p.paragraph_format.right_indent = Pt(BODY_PT * 2)
        elif b.kind == "note":
            _para(doc, b.text, SANS, NOTE_PT, indent=False, align=WD_ALIGN_PARAGRAPH.LEFT, line=None, before=10)
        elif b.kind == "annex_title":
            _para(doc, b.text, SANS, BODY_PT, indent=False, align=WD_ALIGN_PARAGRAPH.LEFT)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
