"""Briefing documents (通报): the figures of every rule for a region and date, written as Word, PDF or Excel.

``build`` gathers the figures from the metric engine only (``data_access.metrics`` and ``problems``: the
functions behind ``bangfu metrics`` / ``bangfu problems`` and the dashboard), so every figure of a briefing
equals the command line's and the pages' for the same scope and date. ``render`` writes the document:

- ``docx``: python-docx;
- ``pdf``: the same content as HTML, laid out on A4 by WeasyPrint (Pango, the system's fontconfig): the CJK
  fonts of Debian's ``fonts-noto-cjk`` are embedded as subsets; nothing is downloaded at run time;
- ``xlsx``: openpyxl, one sheet per rule with title rows, frozen header, widths and number formats.

Charts are matplotlib PNGs in the same fonts. Never imports streamlit.
"""

from __future__ import annotations

from .content import RULE_KEYS, Briefing, ReportError, build, supervision_items

FORMATS = ("docx", "pdf", "xlsx")
MIME = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def render(briefing: Briefing, fmt: str) -> bytes:
    """The briefing as a file of format ``fmt`` (docx, pdf or xlsx)."""
    if fmt == "docx":
        from .word import to_docx

        return to_docx(briefing)
    if fmt == "pdf":
        from .pdf import to_pdf

        return to_pdf(briefing)
    if fmt == "xlsx":
        from .excel import to_xlsx

        return to_xlsx(briefing)
    raise ReportError(f"未知的通报格式 '{fmt}'，应为 {'、'.join(FORMATS)} 之一")


def file_name(briefing: Briefing, fmt: str) -> str:
    """通报_<region or unit code>_<date>[_<rules>].<fmt>."""
    code = briefing.unit_id or briefing.region_code
    rules = None if briefing.complete else [s.key for s in briefing.sections]
    return file_name_for(code, briefing.as_of, rules, fmt)


def file_name_for(code: str | None, as_of, rules, fmt: str) -> str:
    """The file name of a briefing before it is built (codes are ledger text: letters, digits, '_', '-')."""
    import re

    code = re.sub(r"[^0-9A-Za-z_-]", "_", str(code or "province"))[:40]
    part = "" if not rules or list(rules) == list(RULE_KEYS) else "_" + "-".join(rules)
    return f"通报_{code}_{as_of.isoformat()}{part}.{fmt}"


__all__ = ["FORMATS", "MIME", "RULE_KEYS", "Briefing", "ReportError", "build", "file_name", "file_name_for", "render",
           "supervision_items"]
