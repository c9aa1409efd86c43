"""Reusable page pieces: KPI tiles, clickable charts and tables, problem lists with downloads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from data_access import export
from data_access.db import BangfuError
from data_access.views import TITLES

from . import auth
from .filters import Filters
from .format import date_zh, md_text, safe_stem

log = logging.getLogger("bangfu.ui")

# every chart and map: no plotly toolbar (its tooltips are English and its tools are not needed: bars are
# clicked, the map is fitted to the scope), no scroll zoom (the wheel scrolls the page, also over the map)
PLOTLY_CONFIG = {"displayModeBar": False, "displaylogo": False, "scrollZoom": False}


# ------------------------------------------------------------------------------------------- errors


def fail(message: str) -> None:
    """Show one plain sentence and stop the page (never a traceback)."""
    st.error(message, icon=":material/error:")
    st.stop()


@contextmanager
def guard():
    """The one place where database errors become a message."""
    try:
        yield
    except BangfuError as exc:
        log.warning("database unavailable: %s", exc)
        fail(str(exc))
    except SQLAlchemyError as exc:
        from data_access.db import is_timeout, is_unavailable, unavailable_message

        if is_unavailable(exc) or is_timeout(exc):
            log.warning("database unavailable: %s", exc)
            fail(unavailable_message(exc))
        log.exception("database error")
        fail("读取数据库时出错（数据库可能正在重启或连接中断），请稍后刷新页面重试。")


# ------------------------------------------------------------------------------------------- tiles


def kpi(col, label: str, value: str, delta: str | None = None, bad_when_up: bool = False, help: str | None = None,
        neutral: bool = False) -> None:
    """st.metric with the palette's meaning: for bad-direction metrics a rise is red (inverse)."""
    if delta is None or delta == "持平" or neutral:
        kw = {"delta_color": "off"}
        if delta is None or delta == "持平" or not delta.lstrip().startswith(("+", "-")):
            kw["delta_arrow"] = "off"
    else:
        kw = {"delta_color": "inverse" if bad_when_up else "normal"}
    col.metric(label, value, delta, help=help, border=True, **kw)


# ------------------------------------------------------------------------------------------- clicks


def selected_point_code(key: str) -> str | None:
    """The code of the clicked bar or polygon in a chart's selection state: customdata (its first
    item), else the point's location (choropleth maps)."""
    state = st.session_state.get(key)
    try:
        points = state["selection"]["points"]
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    p = points[0]
    cd = p.get("customdata")
    if isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    if cd is not None:
        return str(cd)
    return str(p["location"]) if p.get("location") else None


def _selected_row_code(key: str, codes: list) -> str | None:
    state = st.session_state.get(key)
    try:
        rows = state["selection"]["rows"]
    except (KeyError, TypeError):
        return None
    if not rows or rows[0] >= len(codes):
        return None
    return codes[rows[0]]


def _key(base: str, f: Filters) -> str:
    """Widget keys carry the view, so that a drill starts with a fresh (empty) selection."""
    return f"{base}|{f.region}|{f.unit}|{f.as_of}|{f.year}|{f.helper}"


def click_chart(fig, base_key: str, f: Filters, action: Callable[[str], None] | None = None) -> None:
    """A plotly chart whose bars carry their code as customdata[0]; a click calls action(code)."""
    if action is None:
        st.plotly_chart(fig, key=_key(base_key, f), config=PLOTLY_CONFIG)
        return
    key = _key(base_key, f)

    def on_select():
        code = selected_point_code(key)
        if code:
            action(code)

    st.plotly_chart(fig, key=key, on_select=on_select, selection_mode="points", config=PLOTLY_CONFIG)


def number_config(df: pd.DataFrame, extra: dict | None = None) -> dict:
    """Integer columns with thousands separators (12,345), whatever the column is called."""
    cfg = {c: st.column_config.NumberColumn(format="localized") for c in df.columns
           if pd.api.types.is_integer_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}
    cfg.update(extra or {})
    return cfg


def pct_column() -> st.column_config.NumberColumn:
    """For a column holding rate × 100: '97.3%' in the table, sorted as a number."""
    return st.column_config.NumberColumn(format="%.1f%%")


# Tables are shown whole (Streamlit's "content": no ten-row scroll box; capped by Streamlit at 10,000 px,
# about 280 rows, beyond which the table scrolls). Long problem lists are cut at LIST_ROWS before this.
TABLE_HEIGHT = "content"


def table(df: pd.DataFrame, key: str | None = None) -> None:
    st.dataframe(df, hide_index=True, key=key, column_config=number_config(df), placeholder="—", height=TABLE_HEIGHT)


def click_table(df: pd.DataFrame, base_key: str, f: Filters, codes: list, action: Callable[[str], None],
                column_config: dict | None = None, height=TABLE_HEIGHT) -> None:
    """A table where choosing a row calls action(codes[row])."""
    key = _key(base_key, f)
    column_config = number_config(df, column_config)

    def on_select():
        code = _selected_row_code(key, codes)
        if code:
            action(code)

    st.dataframe(df, key=key, on_select=on_select, selection_mode="single-row", hide_index=True,
                 column_config=column_config, height=height, placeholder="—")


# ------------------------------------------------------------------------------------------- lists


def titled(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The chosen columns (those present), with Chinese titles."""
    cols = [c for c in columns if c in df.columns]
    return df[cols].rename(columns={c: TITLES.get(c, c) for c in cols})


def unmask(view: str, f: Filters) -> bool:
    """The per-view 显示完整个人信息 toggle (only for users allowed to unmask; audited): fetch unmasked?"""
    return auth.unmask_toggle(view, _key(f"unmask-{view}", f), f.scope)


LIST_ROWS = 1000  # ui.data.LIST_ROWS: the rows a page shows of a long list


def problem_list(df: pd.DataFrame | Callable[[bool], pd.DataFrame], columns: list[str], title: str, file_stem: str,
                 f: Filters, empty: str = "没有问题记录。", on_row: Callable[[str], None] | None = None,
                 row_code: str | None = None, note: str | None = None, total: int | None = None,
                 full: Callable[[bool], pd.DataFrame] | None = None, order: str = "") -> None:
    """A masked problem list with its count and CSV / Excel downloads (formula cells neutralised; the Excel file
    with the list's title, scope and date rows above its header, CSV a plain header row), in the order shown.
    `df` may be a function of ``unmasked``: then a user allowed to unmask gets the per-view toggle.
    A long list arrives cut to its first LIST_ROWS (+1, to tell that it is cut): the page shows those
    with the list's ``total`` and the downloads build the whole list through ``full`` when clicked."""
    unmasked = False
    if callable(df):
        unmasked = unmask(file_stem, f)
        df = df(unmasked)
    cut = full is not None and len(df) > LIST_ROWS
    n = total if cut and total is not None else len(df)
    st.markdown(f"**{title}**（{n:,} 条）" if not cut or total is not None else f"**{title}**（超过 {LIST_ROWS:,} 条）")
    if note:
        st.caption(note)
    if df.empty:
        st.success(empty, icon=":material/check_circle:")
        return
    if cut:
        df = df.head(LIST_ROWS)
        st.caption(f"页面显示{order}前 {LIST_ROWS:,} 条；下载 CSV 或 Excel 可得全部记录。")
    cols = [c for c in columns if c in df.columns]
    shown = titled(df, cols)
    if on_row and row_code:
        click_table(shown, f"list-{file_stem}", f, list(df[row_code]), on_row)
        st.caption("点选一行可打开对应页面。")
    else:
        table(shown, key=_key(f"list-{file_stem}", f))
    stem = f"{file_stem}_{f.as_of.isoformat()}"
    if f.region:
        stem += f"_{f.region}"
    if f.unit:
        stem += f"_{f.unit}"
    stem = safe_stem(stem)  # ids are ledger text: the file name keeps letters, digits, '_', '-' and '.'
    out = df[cols]

    def rows() -> pd.DataFrame:
        return full(unmasked)[cols] if cut else out

    heading = export.Heading(title if title.endswith("清单") else f"{title}清单",
                             f.region_name + (f" · {f.unit_name}" if f.unit else ""), f.as_of,
                             note=None if unmasked else "个人信息已脱敏")
    # the files are built when clicked, from this run's scope and date (those on screen); while a new date
    # computes, this run's buttons are greyed and take no clicks (ui/filters.screen_guard)
    what = f"{md_text(heading.title)}：{md_text(heading.scope)}，数据截至{date_zh(f.as_of)}（与本页数字一致）"
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("下载 CSV", data=auth.audited_file(lambda: export.to_csv_bytes(rows(), TITLES), file_stem, n,
                                                          not unmasked, f.scope, "csv"),
                       file_name=f"{stem}.csv", mime="text/csv", on_click="ignore",
                       key=_key(f"csv-{file_stem}", f) + f"|{unmasked}", icon=":material/download:", help=what)
    c2.download_button("下载 Excel",
                       data=auth.audited_file(lambda: export.to_xlsx_bytes(rows(), TITLES, sheet=title[:31], heading=heading),
                                              file_stem, n, not unmasked, f.scope, "xlsx"),
                       file_name=f"{stem}.xlsx", on_click="ignore",
                       key=_key(f"xlsx-{file_stem}", f) + f"|{unmasked}", icon=":material/download:", help=what,
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
