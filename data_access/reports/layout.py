"""A briefing as a list of blocks (title, paragraphs, headings, tables, charts) that the Word and the PDF writer
both walk, so that the two documents say the same thing in the same order.

Layout after GB/T 9704-2012 (党政机关公文格式), taken as the look to approach: title, the date line, the summary
paragraph, then 一、二、… per rule with （一）（二） sub-headings, tables and charts; the supervision orders; the
annex of sending units with a problem on a page of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from . import charts
from .content import (
    ANNEX_COLS,
    CASES_N,
    CHART_N,
    NUMERALS,
    SOURCE,
    WORST_N,
    Briefing,
    Section,
    date_zh,
    num,
    pct,
)

KIND_ZH = {"overdue": "走访逾期", "cap": "超出帮扶上限", "uncovered": "未结对覆盖", "unapproved": "调换未批准"}


@dataclass
class Block:
    kind: str  # title | subtitle | para | h1 | h2 | table | image | note | pagebreak | sign | annex_title
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    aligns: list[str] = field(default_factory=list)  # per column: "l" | "r"
    widths: list[float] = field(default_factory=list)  # relative column widths
    image: bytes | None = None


def _cell(value, kind: str) -> str:
    missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
    if kind == "int":
        return num(value)
    if kind == "pct":
        return pct(None if missing else float(value))
    return "" if missing else str(value)


def group_table(section: Section, df, cols, first_title: str) -> Block:
    headers = [first_title] + [t for _, t, _ in cols]
    rows = [[str(r["name"])] + [_cell(r[c], k) for c, _, k in cols] for _, r in df.iterrows()]
    return Block("table", headers=headers, rows=rows, aligns=["l"] + ["r"] * len(cols),
                 widths=[2.6] + [1.0] * len(cols))


def case_rows(cases) -> list[list[str]]:
    """The helpers over the cap as table rows: name, unit, department (blank when there is none), load."""
    return [[_cell(r["helper_name"], "text"), _cell(r["unit_name"], "text"), _cell(r["department"], "text"),
             num(r["load"])] for _, r in cases.iterrows()]


def _worst_heading(section: Section, n_shown: int, what: str) -> str:
    rule = section.rule
    order = "最低" if rule.higher_is_better else "最高"
    count = f"{n_shown}个" if n_shown else ""
    return f"{rule.rate_label}{order}的{count}{what}"


def section_blocks(b: Briefing, s: Section, figure_no: list[int]) -> list[Block]:
    rule = s.rule
    out = [Block("h1", f"{s.number}、{rule.heading}（{rule.article}）"), Block("para", s.text)]
    sub = iter(NUMERALS)
    label = s.region_label
    if s.region_level:
        worst = s.worst_regions
        out.append(Block("h2", f"（{next(sub)}）{_worst_heading(s, len(worst), label)}"))
        if worst.empty:
            out.append(Block("para", f"各{label}{rule.no_problem}。"))
        else:
            out.append(Block("para", f"以下{len(worst)}个{label}的{rule.problem_label}"
                                     f"{'较多' if len(worst) == WORST_N else ''}、{rule.rate_label}"
                                     f"{'偏低' if rule.higher_is_better else '偏高'}，请督促整改："))
            out.append(group_table(s, worst, rule.region_cols, label))
    if s.units is not None:
        worst = s.worst_units
        out.append(Block("h2", f"（{next(sub)}）{_worst_heading(s, len(worst), '派出单位')}"))
        if worst.empty:
            out.append(Block("para", f"各派出单位{rule.no_problem}。"))
        else:
            out.append(group_table(s, worst, rule.unit_cols, "派出单位"))
    if s.cases is not None and len(s.cases):
        out.append(Block("h2", f"（{next(sub)}）帮扶户数最多的超上限责任人"))
        note = "" if b.unmasked else "（姓名已脱敏）"
        out.append(Block("para", f"帮扶户数最多的{len(s.cases)}名超上限责任人{note}："
                         if len(s.cases) < CASES_N else f"帮扶户数最多的前{CASES_N}名超上限责任人{note}："))
        out.append(Block("table", headers=["姓名", "派出单位", "处室", "帮扶户数"], rows=case_rows(s.cases),
                         aligns=["l", "l", "l", "r"], widths=[1.2, 2.8, 1.6, 1.0]))
    png = charts.section_chart(s, CHART_N)
    if png:
        figure_no[0] += 1
        n = len(charts.charted(s, CHART_N))
        more = f"（{rule.rate_label}{'最低' if rule.higher_is_better else '最高'}的{n}个）" if len(s.regions) > n else ""
        title = (f"各{label}责任人考核等次构成（{s.period}）" if s.key == "ratings"
                 else f"各{label}{rule.rate_label}{more}")
        out.append(Block("image", f"图{figure_no[0]}　{title}", image=png))
    return out


def supervision_blocks(b: Briefing, number: str) -> list[Block]:
    out = [Block("h1", f"{number}、督办整改情况（第十二条（四））")]
    sv = b.supervision
    if sv is None or sv.empty:
        out.append(Block("para", f"截至{date_zh(b.as_of)}，{b.scope_name}没有整改中或逾期未整改的督办事项。"))
        return out
    n_open, n_overdue = int(sv["open"].sum()), int(sv["overdue"].sum())
    out.append(Block("para", f"截至{date_zh(b.as_of)}，{b.scope_name}共有{len(sv):,}份督办单尚未整改完毕，"
                             f"其中逾期未整改事项{n_overdue:,}条、整改中事项{n_open:,}条："))
    rows = [[str(r["order_id"]), str(r["unit_name"]), KIND_ZH.get(r["kind"], str(r["kind"])), date_zh(r["issued_on"]),
             date_zh(r["deadline"]), num(r["overdue"]), num(r["open"])] for _, r in sv.iterrows()]
    out.append(Block("table", headers=["督办单号", "派出单位", "问题类型", "下达日期", "整改期限", "逾期未整改", "整改中"],
                     rows=rows, aligns=["l", "l", "l", "l", "l", "r", "r"], widths=[1.6, 2.2, 1.3, 1.5, 1.5, 1.0, 1.0]))
    return out


def annex_blocks(b: Briefing) -> list[Block]:
    out = [Block("pagebreak"), Block("annex_title", "附件"),
           Block("title", "存在问题的派出单位名单")]
    a = b.annex
    if a.empty:
        out.append(Block("para", f"截至{date_zh(b.as_of)}，{b.scope_name}的派出单位均无下列问题。"))
        return out
    cols = [(c, t) for c, t, _ in ANNEX_COLS if c in a.columns]
    out.append(Block("para", f"共{len(a):,}个派出单位，按所属区划和单位编号排列；照片上传率为比例指标，不列入。"))
    headers = ["单位编号", "派出单位", "级别", "所属区划"] + [t for _, t in cols]
    rows = [[str(r["code"]), str(r["name"]), str(r["level"] or ""), str(r["region_name"] or "")] +
            [num(r[c]) for c, _ in cols] for _, r in a.iterrows()]
    out.append(Block("table", headers=headers, rows=rows, aligns=["l"] * 4 + ["r"] * len(cols),
                     widths=[1.1, 2.4, 0.8, 1.3] + [1.0] * len(cols)))
    return out


def blocks(b: Briefing) -> list[Block]:
    out = [Block("title", b.title), Block("subtitle", f"（{b.date_line}）"), Block("para", b.summary)]
    figure_no = [0]
    for s in b.sections:
        out += section_blocks(b, s, figure_no)
    out += supervision_blocks(b, NUMERALS[len(b.sections)])
    mask = "" if b.unmasked else "文中个人信息已脱敏。"
    out.append(Block("para", "附件：存在问题的派出单位名单"))
    out.append(Block("sign", f"{date_zh(b.issued_on)}"))
    out.append(Block("note", f"数据来源：{SOURCE}；范围：{b.scope_line}；{b.date_line}。{mask}"))
    out += annex_blocks(b)
    return out
