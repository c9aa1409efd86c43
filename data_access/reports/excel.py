"""A briefing as an Excel workbook: 概况 (every figure with its comparison), one sheet per rule (every child group
and every sending unit of the scope, worst first, as on the dashboard), the helpers over the cap, the open and
overdue supervision orders and the annex. Each sheet has the title, scope, date and source rows, a frozen
header, column widths and number formats (export.write_frame)."""

from __future__ import annotations

import io

import pandas as pd

from ..export import Heading, safe_frame, write_frame
from .content import ANNEX_COLS, SOURCE, Briefing, Section, date_zh
from .layout import KIND_ZH

PCT = "0.0%"
SHEET = {"coverage": "结对覆盖", "cap": "帮扶上限", "cadence": "走访频次", "photos": "走访照片", "ratings": "年度考核",
         "replacements": "调换审批"}
# 概况: (rule, field, label, kind)
OVERVIEW = {
    "coverage": (("households", "在帮贫困户（户）", "int"), ("covered", "已结对（户）", "int"),
                 ("uncovered", "未结对（户）", "int"), ("weak", "弱结对（户）", "int"), ("rate", "结对覆盖率", "pct")),
    "cap": (("helpers", "在帮责任人（名）", "int"), ("violators", "超上限责任人（名）", "int"),
            ("excess", "超出户数（户）", "int"), ("rate", "超上限占比", "pct")),
    "cadence": (("active_pairings", "在帮结对（个）", "int"), ("overdue", "走访逾期结对（个）", "int"),
                ("rate", "走访合规率", "pct")),
    "photos": (("in_home_visits", "入户走访（次）", "int"), ("with_photo", "上传照片（次）", "int"),
               ("without_photo", "未上传照片（次）", "int"), ("rate", "照片上传率", "pct")),
    "ratings": (("rated", "已考核（名）", "int"), ("excellent", "优秀（名）", "int"), ("qualified", "合格（名）", "int"),
                ("unqualified", "不合格（名）", "int"), ("missing", "未考核（名）", "int"), ("rate", "未考核率", "pct")),
    "replacements": (("replacements", "调换（次）", "int"), ("unapproved", "未经批准（次）", "int"),
                     ("rate", "未批准占比", "pct")),
}


def _heading(b: Briefing, what: str) -> Heading:
    mask = None if b.unmasked else "个人信息已脱敏"
    return Heading(f"{b.title}——{what}", b.scope_line, b.as_of, SOURCE, mask)


def _overview(b: Briefing) -> tuple[pd.DataFrame, list[bool]]:
    rows, is_pct = [], []
    for s in b.sections:
        for f, label, kind in OVERVIEW[s.key]:
            cur, prev = s.total.get(f), (s.before or {}).get(f)
            change = None if cur is None or prev is None else cur - prev
            rows.append({"条款": f"{s.rule.heading}（{s.rule.article}）", "指标": label,
                         "本期": cur, "比较基准": s.before_label, "基准值": prev, "变化": change,
                         "本期口径": s.period or date_zh(b.as_of)})
            is_pct.append(kind == "pct")
    return pd.DataFrame(rows, columns=["条款", "指标", "本期口径", "本期", "比较基准", "基准值", "变化"]), is_pct


def _rule_frame(s: Section) -> pd.DataFrame:
    """Every child group, then every sending unit, worst first: 分组, 代码, 名称, (级别, 所属区划), fields, rate."""
    rule = s.rule
    parts = []
    if s.region_level and s.regions is not None and len(s.regions):
        r = s.regions
        part = pd.DataFrame({"分组": s.region_label, "代码": r["code"], "名称": r["name"], "级别": None, "所属区划": None})
        for c, t, _ in rule.region_cols:
            part[t] = r[c].values
        parts.append(part)
    if s.units is not None and len(s.units):
        u = s.units
        part = pd.DataFrame({"分组": "派出单位", "代码": u["code"], "名称": u["name"], "级别": u["level"],
                             "所属区划": u["region_name"]})
        for c, t, _ in rule.unit_cols:
            part[t] = u[c].values
        parts.append(part)
    cols = ["分组", "代码", "名称", "级别", "所属区划"]
    for c, t, _ in (*rule.region_cols, *rule.unit_cols):
        if t not in cols:
            cols.append(t)
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    return df.reindex(columns=cols)


def to_xlsx(b: Briefing) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    frame, is_pct = _overview(b)
    top = write_frame(ws, safe_frame(frame), _heading(b, "概况"))
    for i, pct in enumerate(is_pct):
        for col in (4, 6, 7):  # 本期, 基准值, 变化
            ws.cell(row=top + 1 + i, column=col).number_format = "+0.0%;-0.0%;0.0%" if pct and col == 7 else \
                PCT if pct else ("+#,##0;-#,##0;0" if col == 7 else "#,##0")

    for s in b.sections:
        df = _rule_frame(s)
        formats = {t: PCT if k == "pct" else "#,##0" for c, t, k in (*s.rule.region_cols, *s.rule.unit_cols)}
        ws = wb.create_sheet(f"{s.number} {SHEET[s.key]}"[:31])
        write_frame(ws, safe_frame(df), _heading(b, f"{s.rule.heading}（{s.rule.article}）"), formats=formats)
    cap = b.section("cap")
    if cap is not None and cap.cases is not None and len(cap.cases):
        cases = cap.cases[["helper_id", "helper_name", "unit_id", "unit_name", "department", "load"]].rename(columns={
            "helper_id": "帮扶责任人编号", "helper_name": "姓名", "unit_id": "单位编号", "unit_name": "派出单位",
            "department": "处室", "load": "帮扶户数"})
        write_frame(wb.create_sheet("超上限责任人"), safe_frame(cases), _heading(b, "帮扶户数最多的超上限责任人"))

    sv = b.supervision
    cols = ["督办单号", "派出单位", "单位编号", "问题类型", "下达日期", "整改期限", "逾期未整改", "整改中"]
    if sv is None or sv.empty:
        sv_frame = pd.DataFrame(columns=cols)
    else:
        sv_frame = pd.DataFrame({"督办单号": sv["order_id"], "派出单位": sv["unit_name"], "单位编号": sv["unit_id"],
                                 "问题类型": sv["kind"].map(KIND_ZH).fillna(sv["kind"]), "下达日期": sv["issued_on"],
                                 "整改期限": sv["deadline"], "逾期未整改": sv["overdue"], "整改中": sv["open"]})
    write_frame(wb.create_sheet("督办事项"), safe_frame(sv_frame), _heading(b, "整改中和逾期未整改的督办事项"))

    a = b.annex
    annex = pd.DataFrame({"单位编号": a["code"], "派出单位": a["name"], "级别": a["level"], "所属区划": a["region_name"]})
    for c, t, _ in ANNEX_COLS:
        if c in a.columns:
            annex[t] = a[c].values
    write_frame(wb.create_sheet("附件 问题单位"), safe_frame(annex), _heading(b, "附件：存在问题的派出单位名单"))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
