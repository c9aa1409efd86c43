"""CSV and Excel exports that are safe to open in Excel."""

from __future__ import annotations

import datetime as dt
import io

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
    """UTF-8 with a BOM so that Excel in China opens it with the right encoding."""
    text = safe_frame(df, titles).to_csv(index=False)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def to_xlsx_bytes(df: pd.DataFrame, titles: dict[str, str] | None = None, sheet: str = "清单") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    frame = safe_frame(df, titles)
    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
                cells.append(None)
            elif isinstance(v, (pd.Timestamp,)):
                cells.append(v.date())
            elif hasattr(v, "item") and not isinstance(v, (str, dt.date)):
                cells.append(v.item())
            else:
                cells.append(v)
        ws.append(cells)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    # text cells stay text: no formula interpretation of values that start like one
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
