"""下载通报: the briefing (data_access/reports) of the page's scope and date as Word, PDF or Excel.

The file is built when its button is clicked (a deferred download: nothing is computed for a page view), from
the same metric functions as the page; the click is audited like every export. Personal data in it (the named
helpers over the cap) is masked unless the user holds the unmask permission and turns on the popover's
显示完整个人信息 toggle (audited, as on every list)."""

from __future__ import annotations

import streamlit as st

from data_access import reports, routing, users
from data_access.db import BangfuError
from data_access.reports import fonts

from . import auth, data
from .filters import Filters
from .format import date_zh, md_text

FORMATS = (("docx", "Word"), ("pdf", "PDF"), ("xlsx", "Excel"))


@st.cache_data(ttl=data.TTL, show_spinner=False, max_entries=32)
def briefing(url: str, as_of, region: str | None, unit: str | None, rules, unmasked: bool) -> reports.Briefing:
    """The briefing's figures, read like every page read (ui/data.reader); kept for a minute so that the Word,
    PDF and Excel files of one scope and date are built from one reading (the scope and ``unmasked`` are part of
    the key)."""
    return routing.run_read(data.reader(url), reports.build, as_of, region, unit, rules=rules, unmasked=unmasked)


def build_file(url: str, as_of, region: str | None, unit: str | None, rules, unmasked: bool, fmt: str) -> bytes:
    """The file's bytes (built when its button is clicked)."""
    return reports.render(briefing(url, as_of, region, unit, rules, unmasked), fmt)


def report_button(f: Filters, view: str = "overview", rules: tuple[str, ...] | None = None) -> None:
    """The 下载通报 popover: one download button per format for the page's scope and date (``rules``: the rule
    page's sections; default every rule)."""
    scope = f.scope
    if scope == users.NOTHING:
        return
    try:
        fonts.check()
    except BangfuError as exc:
        st.caption(f"无法生成通报：{exc}")
        return
    what = "本页指标" if rules else "各项指标"
    with st.popover("下载通报", icon=":material/description:"):
        st.caption(f"关于{md_text(f.unit_name or f.region_name)}帮扶责任人工作情况的通报（{what}），数据截至{date_zh(f.as_of)}。"
                   "点击后生成，约需数秒。")
        key = f"report|{view}|{scope.region}|{scope.unit}|{f.as_of}"
        unmasked = auth.unmask_toggle(f"report-{view}", f"{key}|unmask", scope)
        for fmt, label in FORMATS:
            st.download_button(
                f"下载通报（{label}）",
                data=auth.audited_file(
                    lambda fmt=fmt: build_file(f.url, f.as_of, scope.region, scope.unit, rules, unmasked, fmt),
                    f"report:{view}", len(rules or reports.RULE_KEYS), not unmasked, scope, fmt),
                file_name=reports.file_name_for(scope.unit or scope.region, f.as_of, rules, fmt),
                mime=reports.MIME[fmt], on_click="ignore",
                key=f"{key}|{fmt}|{unmasked}", icon=":material/download:", width="stretch")
