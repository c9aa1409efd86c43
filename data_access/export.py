"""CSV and Excel exports that are safe to open in Excel."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell Excel would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame, titles: dict[str, str] | None = None) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    if titles:
        out = out.rename(columns={c: titles.get(c, c) for c in out.columns})
    return out


def to_csv_bytes(df: pd.DataFrame, titles: dict[str, str] | None = None, bom: bool = True) -> bytes:
    """UTF-8 with a BOM so that Excel in China opens it with the right encoding. Lines end in CRLF (RFC 4180),
    so that a cell holding a line break of either kind is quoted: with "\n" line ends a bare CR inside a
    cell was written unquoted, and Excel would start a new row there (its next cell unneutralised)."""
    text = safe_frame(df, titles).to_csv(index=False, lineterminator="\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


@dataclass(frozen=True)
class Heading:
    """The title rows above an Excel table: what the list is, for which scope, as of which date, from where.
    (CSV files keep a plain header row for machines.)"""

    title: str
    scope: str
    as_of: dt.date | None = None
    source: str = "帮扶责任人监测看板"
    note: str | None = None

    def lines(self) -> list[str]:
        when = f"　数据截至：{self.as_of.year}年{self.as_of.month}月{self.as_of.day}日" if self.as_of else ""
        return [self.title, f"范围：{self.scope}{when}",
                f"来源：{self.source}" + (f"；{self.note}" if self.note else "")]


def _display_width(value) -> int:
    text = value if isinstance(value, str) else f"{value:,}" if isinstance(value, int) else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def write_frame(ws, frame: pd.DataFrame, heading: Heading | None = None, formats: dict | None = None) -> int:
    """Write ``frame`` (already ``safe_frame``d) to the sheet: the heading's rows and a blank row first when
    given, then a bold header row (frozen, with a filter), the rows, column widths from the content and number
    formats (``formats``: column title -> Excel format; integers '#,##0' and dates 'yyyy-mm-dd' otherwise).
    Returns the header's row number."""
    from openpyxl.styles import Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    top = 1
    if heading is not None:
        for i, line in enumerate(heading.lines()):
            cell = ws.cell(row=i + 1, column=1, value=neutralise(line))
            cell.data_type = "s"
            cell.font = Font(bold=True, size=14) if i == 0 else Font(size=10, color="444444")
        top = len(heading.lines()) + 2
    thin = Side(style="thin", color="999999")
    for j, name in enumerate(frame.columns, start=1):
        cell = ws.cell(row=top, column=j, value=str(name))
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2F2F2")
        cell.border = Border(bottom=thin)
    widths = [_display_width(str(c)) for c in frame.columns]
    formats = formats or {}
    for i, row in enumerate(frame.itertuples(index=False), start=top + 1):
        for j, v in enumerate(row, start=1):
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
                v = None
            elif isinstance(v, (pd.Timestamp,)):
                v = v.date()
            elif hasattr(v, "item") and not isinstance(v, (str, dt.date)):
                v = v.item()
            cell = ws.cell(row=i, column=j, value=v)
            # text cells stay text: no formula interpretation of values that start like one
            if isinstance(v, str):
                cell.data_type = "s"
            fmt = formats.get(frame.columns[j - 1])
            if fmt:
                cell.number_format = fmt
            elif isinstance(v, bool):
                pass
            elif isinstance(v, int):
                cell.number_format = "#,##0"
            elif isinstance(v, dt.date):
                cell.number_format = "yyyy-mm-dd"
            if v is not None:
                widths[j - 1] = max(widths[j - 1], _display_width(v) if not isinstance(v, float) else 8)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(max(w + 2, 8), 60)
    if len(frame.columns):
        ws.freeze_panes = ws.cell(row=top + 1, column=1)
        ws.auto_filter.ref = f"A{top}:{get_column_letter(len(frame.columns))}{top + max(len(frame), 1)}"
    return top


def to_xlsx_bytes(df: pd.DataFrame, titles: dict[str, str] | None = None, sheet: str = "清单",
                  heading: Heading | None = None) -> bytes:
    """One sheet: the rows of ``df`` (formula cells neutralised) under a bold, frozen header row; with a
    ``heading`` (every download in the dashboard) its title, scope and date rows above it."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    write_frame(ws, safe_frame(df, titles), heading)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
