"""What a briefing (通报) says: its figures, gathered from the metric engine only.

Every number comes from a function that ``bangfu metrics`` / ``bangfu problems`` or the dashboard call for the
same scope and date (``metrics.coverage/cap/cadence/ratings/replacements/photos``, ``problems.cap_violators``);
nothing here counts anything itself, it only derives rates and orders rows.

Scope: a region (default the province) and optionally a sending unit, as on the dashboard. The sections rank
the region's child groups (counties under a city, townships under a county, cities under the province; for
helper-based rules a unit above that level counts under "省直"/"某某市直", as in ``bangfu metrics --by``), and
the sending units seated in the region with their own figures (``bangfu metrics --by unit``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import inspect, select

from .. import metrics as m
from .. import rules
from .. import registry
from .. import problems as pb
from .. import schema, settings
from ..dates import months_before, previous_month_end
from ..db import BangfuError
from ..scope import ALL, Conn, Scope
from ..views import (
    LEVEL_ZH,
    UNIT_LEVEL_ZH,
    child_level,
    list_regions,
    list_units,
    region_info,
)

WORST_N = 5  # the counties and units named per rule
CASES_N = 10  # the helpers over the cap named in the cap section
CHART_N = 15  # the groups drawn in a section's chart (worst first)
SOURCE = "帮扶责任人监测看板（按冀扶贫脱贫〔2018〕24号《河北省贫困户帮扶责任人管理办法》口径计算）"


class ReportError(BangfuError):
    """A user mistake in asking for a briefing (one plain sentence)."""


# ------------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Rule:
    key: str
    heading: str
    article: str
    rate_label: str  # what ``rate`` is
    higher_is_better: bool
    problem: str  # the column counted as the problem (a group is named only when it is > 0)
    problem_label: str
    unit: str  # of the problem count (户, 名, 个, 次)
    region_cols: tuple  # (column, title, kind) kind: text | int | pct
    unit_cols: tuple
    no_problem: str  # said when no group has the problem


RULES: dict[str, Rule] = {
    "coverage": Rule(
        "coverage", "结对覆盖与弱结对", "第五条、第七条", "结对覆盖率", True, "uncovered", "未覆盖户", "户",
        (("households", "在帮贫困户", "int"), ("uncovered", "未覆盖户", "int"), ("weak", "弱结对户", "int"),
         ("rate", "结对覆盖率", "pct")),
        (("households", "驻村在帮贫困户", "int"), ("covered", "本单位结对", "int"), ("uncovered", "未覆盖户", "int"),
         ("rate", "驻村覆盖率", "pct")),
        "均无未结对的在帮贫困户"),
    "cap": Rule(
        "cap", "帮扶户数上限", "第五条", "超上限占比", False, "violators", "超上限责任人", "名",
        (("helpers", "在帮责任人", "int"), ("violators", "超上限责任人", "int"), ("excess", "超出户数", "int"),
         ("rate", "超上限占比", "pct")),
        (("helpers", "在帮责任人", "int"), ("violators", "超上限责任人", "int"), ("excess", "超出户数", "int"),
         ("rate", "超上限占比", "pct")),
        "均无帮扶超过5户的责任人"),
    "cadence": Rule(
        "cadence", "入户走访频次", "第十二条（二）", "走访合规率", True, "overdue", "逾期结对", "个",
        (("active_pairings", "在帮结对", "int"), ("overdue", "逾期结对", "int"), ("rate", "走访合规率", "pct")),
        (("active_pairings", "在帮结对", "int"), ("overdue", "逾期结对", "int"), ("rate", "走访合规率", "pct")),
        "均无走访逾期的结对"),
    "photos": Rule(
        "photos", "走访照片记录", "第十二条（三）", "照片上传率", True, "without_photo", "未上传照片的入户走访", "次",
        (("in_home_visits", "入户走访", "int"), ("with_photo", "上传照片", "int"), ("without_photo", "未上传照片", "int"),
         ("rate", "照片上传率", "pct")),
        (("in_home_visits", "入户走访", "int"), ("with_photo", "上传照片", "int"), ("without_photo", "未上传照片", "int"),
         ("rate", "照片上传率", "pct")),
        "入户走访均上传了电子照片"),
    "ratings": Rule(
        "ratings", "年度考核", "第十三条", "未考核率", False, "missing", "未考核责任人", "名",
        (("rated", "已考核", "int"), ("excellent", "优秀", "int"), ("unqualified", "不合格", "int"),
         ("missing", "未考核", "int"), ("rate", "未考核率", "pct")),
        (("rated", "已考核", "int"), ("excellent", "优秀", "int"), ("unqualified", "不合格", "int"),
         ("missing", "未考核", "int"), ("rate", "未考核率", "pct")),
        "在帮责任人均已考核"),
    "replacements": Rule(
        "replacements", "调换审批", "第十条", "未批准占比", False, "unapproved", "未经批准的调换", "次",
        (("replacements", "调换", "int"), ("unapproved", "未经批准", "int"), ("rate", "未批准占比", "pct")),
        (("replacements", "调换", "int"), ("unapproved", "未经批准", "int"), ("rate", "未批准占比", "pct")),
        "调换均经县委组织部批准"),
}
RULE_KEYS = tuple(RULES)
NUMERALS = "一二三四五六七八九十"


def _ratio(part, whole):
    return None if not whole else part / whole


def derive(rule: str, row: dict) -> dict:
    """A metric row (a total, a group) with the rule's derived counts and its ``rate``."""
    r = dict(row)
    if rule == "coverage":
        r["uncovered"] = r["households"] - r["covered"]
        r["rate"] = _ratio(r["covered"], r["households"])
    elif rule == "cap":
        r["rate"] = _ratio(r["violators"], r["helpers"])
    elif rule == "cadence":
        r["rate"] = None if not r["active_pairings"] else 1 - r["overdue"] / r["active_pairings"]
    elif rule == "photos":
        r["without_photo"] = r["in_home_visits"] - r["with_photo"]
        r["rate"] = _ratio(r["with_photo"], r["in_home_visits"])
    elif rule == "ratings":
        r["rated"] = r["excellent"] + r["qualified"] + r["unqualified"]
        r["rate"] = _ratio(r["missing"], r["rated"] + r["missing"])
    elif rule == "replacements":
        r["rate"] = _ratio(r["unapproved"], r["replacements"])
    return r


def _derive_frame(rule: str, df: pd.DataFrame) -> pd.DataFrame:
    """``derive`` on every row (an empty frame gets the derived columns too)."""
    fields = registry.fields(rule)
    zero = derive(rule, {"code": None, "name": None, **{f: 0 for f in fields}})
    cols = list(df.columns) + [c for c in zero if c not in df.columns]
    return pd.DataFrame([derive(rule, rec) for rec in df.to_dict("records")], columns=cols)


def rank(rule: Rule, df: pd.DataFrame) -> pd.DataFrame:
    """Worst first: by rate (lowest first where higher is better), then more problems, then code. Groups
    with nothing to count (rate None) go last."""
    if df.empty:
        return df.reset_index(drop=True)
    key = df["rate"].astype("float64")
    key = key if rule.higher_is_better else -key
    out = df.assign(_none=df["rate"].isna(), _k=key, _p=-df[rule.problem].astype("int64"))
    out = out.sort_values(["_none", "_k", "_p", "code"], kind="stable")
    return out.drop(columns=["_none", "_k", "_p"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------------- the model


@dataclass
class Section:
    rule: Rule
    number: str  # 一, 二, …
    total: dict
    before: dict | None  # the same figures at the comparison point (None: no comparison)
    before_label: str  # "2026年9月30日" / "2024年度"
    period: str | None  # what the figures cover when not "on the date" (photos: a period; ratings: a year)
    regions: pd.DataFrame  # every child group, worst first (columns code, name, fields, derived, rate)
    region_level: str | None  # the child groups' level
    units: pd.DataFrame | None  # the sending units of the scope, worst first (None with a unit scope)
    cases: pd.DataFrame | None = None  # cap: the helpers with the highest loads over the cap
    text: str = ""

    @property
    def key(self) -> str:
        return self.rule.key

    @property
    def worst_regions(self) -> pd.DataFrame:
        r = self.regions
        return r[r[self.rule.problem] > 0].head(WORST_N).reset_index(drop=True)

    @property
    def worst_units(self) -> pd.DataFrame | None:
        if self.units is None:
            return None
        u = self.units
        return u[u[self.rule.problem] > 0].head(WORST_N).reset_index(drop=True)

    @property
    def region_label(self) -> str:
        return LEVEL_ZH.get(self.region_level or "", "")


@dataclass
class Briefing:
    as_of: dt.date
    before: dt.date  # the month-end before the date: what changes are measured against
    year: int  # the rating year (the year before the date's, as ``bangfu metrics ratings``)
    region_code: str | None
    region_name: str
    region_level: str
    unit_id: str | None
    unit_name: str | None
    sections: list[Section]
    summary: str
    supervision: pd.DataFrame | None  # open and overdue items per order; None: no supervision orders table
    annex: pd.DataFrame  # the sending units of the scope with a problem
    unmasked: bool
    complete: bool  # every rule (False: a rule page's briefing)
    issued_on: dt.date
    photo_start: dt.date
    notes: list[str] = field(default_factory=list)

    @property
    def scope_name(self) -> str:
        return self.unit_name if self.unit_name else self.region_name

    @property
    def title(self) -> str:
        return f"关于{self.scope_name}帮扶责任人工作情况的通报"

    @property
    def date_line(self) -> str:
        return f"数据截至{date_zh(self.as_of)}"

    @property
    def scope_line(self) -> str:
        if self.unit_name:
            where = f"{self.unit_name}（单位编号 {self.unit_id}）"
            return where + ("" if not self.region_code else f"，{self.region_name}范围内")
        return self.region_name

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


# ------------------------------------------------------------------------------------------- words


def date_zh(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def num(n) -> str:
    return "—" if n is None else f"{int(n):,}"


def pct(x) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def count_change(cur: int, prev: int | None, unit: str, label: str) -> str:
    if prev is None:
        return ""
    d = int(cur) - int(prev)
    if d == 0:
        return f"与{label}持平"
    return f"较{label}{'增加' if d > 0 else '减少'}{abs(d):,}{unit}"


def rate_change(cur, prev, label: str) -> str:
    if cur is None or prev is None:
        return ""
    d = round((cur - prev) * 100, 1)
    if d == 0:
        return f"与{label}持平"
    return f"较{label}{'上升' if d > 0 else '下降'}{abs(d):.1f}个百分点"


def _paren(*parts: str) -> str:
    parts = [p for p in parts if p]
    return f"（{'，'.join(parts)}）" if parts else ""


def section_text(s: Section, scope_name: str) -> str:
    t, b, lab = s.total, s.before, s.before_label
    k = s.key
    if k == "coverage":
        return (f"{scope_name}在帮贫困户{num(t['households'])}户，已结对{num(t['covered'])}户，结对覆盖率{pct(t['rate'])}"
                f"{_paren(rate_change(t['rate'], b and b['rate'], lab))}；未覆盖{num(t['uncovered'])}户"
                f"{_paren(count_change(t['uncovered'], b and b['uncovered'], '户', lab))}；"
                f"弱结对{num(t['weak'])}户（尚未脱贫、在帮责任人均不是干部职工）。")
    if k == "cap":
        return (f"在帮责任人{num(t['helpers'])}名，帮扶超过{rules.CAP}户的{num(t['violators'])}名"
                f"{_paren(count_change(t['violators'], b and b['violators'], '名', lab))}，占{pct(t['rate'])}，"
                f"超出户数合计{num(t['excess'])}户。")
    if k == "cadence":
        return (f"在帮结对{num(t['active_pairings'])}个，超过规定间隔未入户走访的{num(t['overdue'])}个"
                f"{_paren(count_change(t['overdue'], b and b['overdue'], '个', lab))}，走访合规率{pct(t['rate'])}"
                f"{_paren(rate_change(t['rate'], b and b['rate'], lab))}。")
    if k == "photos":
        return (f"{s.period}入户走访{num(t['in_home_visits'])}次，上传电子照片{num(t['with_photo'])}次，"
                f"照片上传率{pct(t['rate'])}{_paren(rate_change(t['rate'], b and b['rate'], lab))}。")
    if k == "ratings":
        return (f"{s.period}已考核责任人{num(t['rated'])}名，其中优秀{num(t['excellent'])}名、合格{num(t['qualified'])}名、"
                f"不合格{num(t['unqualified'])}名；有在帮结对但未考核的{num(t['missing'])}名"
                f"{_paren(count_change(t['missing'], b and b['missing'], '名', lab))}。")
    if k == "replacements":
        return (f"因患病、调离、处分调换结对{num(t['replacements'])}次，其中未经县委组织部批准的{num(t['unapproved'])}次"
                f"{_paren(count_change(t['unapproved'], b and b['unapproved'], '次', lab))}。")
    raise ValueError(k)


# ------------------------------------------------------------------------------------------- gathering


def _metric(bind, key: str, d: dt.date, by: str, scope: Scope, year: int, photo_start: dt.date) -> pd.DataFrame:
    if key == "coverage":
        return m.coverage(bind, d, by, scope)
    if key == "cap":
        return m.cap(bind, d, by, scope)
    if key == "cadence":
        return m.cadence(bind, d, by, scope)
    if key == "photos":
        return m.photos(bind, photo_start, d, by, scope)
    if key == "ratings":
        return m.ratings(bind, year, by, scope)
    if key == "replacements":
        return m.replacements(bind, d, by, scope)
    raise ReportError(f"未知的指标 '{key}'，应为 {'、'.join(RULE_KEYS)} 之一")


def _total(bind, key, d, scope, year, photo_start) -> dict:
    metric = "photos" if key == "photos" else key
    return derive(key, m.total_row(_metric(bind, key, d, "province", scope, year, photo_start), metric))


def photo_period_start(d: dt.date) -> dt.date:
    """The first day of the 12 calendar months up to d's (the dashboard's 近12个月)."""
    return months_before(d.replace(day=1), 11)


def _province(conn) -> tuple[str | None, str]:
    r = schema.regions
    row = conn.execute(select(r.c.code, r.c.name).where(r.c.level == "province").order_by(r.c.code).limit(1)).first()
    return (row.code, row.name) if row else (None, "全省")


def supervision_items(bind, as_of: dt.date, scope: Scope = ALL) -> pd.DataFrame | None:
    """The open and overdue supervision items (督办, RULES.md M7 — issue 13) visible in ``scope`` on the date,
    one row per item: order_id, kind, subject, unit_id, issued_on, deadline, status ('open' | 'overdue').

    None while the database has no supervision orders table (``schema.supervision_orders`` and its migration
    come with issue 13); the briefing's supervision section then says that no order has been issued."""
    table = getattr(schema, "supervision_orders", None)
    if table is None:
        return None
    with Conn(bind) as conn:
        if not inspect(conn).has_table(table.name):
            return None
    from .. import supervision as sv

    items = sv.item_status(bind, as_of, scope)
    return items[items["status"].isin(["open", "overdue"])].reset_index(drop=True)


def _supervision_by_order(bind, items: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per order: order_id, kind, unit_id, unit_name, issued_on, deadline, open, overdue."""
    if items is None:
        return None
    cols = ["order_id", "kind", "unit_id", "unit_name", "issued_on", "deadline", "open", "overdue"]
    if items.empty:
        return pd.DataFrame(columns=cols)
    g = items.groupby(["order_id", "kind", "unit_id", "issued_on", "deadline"], as_index=False).agg(
        open=("status", lambda s: int((s == "open").sum())), overdue=("status", lambda s: int((s == "overdue").sum())))
    u = schema.units
    with Conn(bind) as conn:
        names = dict(conn.execute(select(u.c.unit_id, u.c.name).where(u.c.unit_id.in_(list(g["unit_id"])))).all())
    g["unit_name"] = g["unit_id"].map(names).fillna(g["unit_id"])
    g = g.sort_values(["overdue", "deadline", "order_id"], ascending=[False, True, True], kind="stable")
    return g[cols].reset_index(drop=True)


def build(bind, as_of: dt.date | None = None, region: str | None = None, unit: str | None = None,
          rules=None, unmasked: bool = False) -> Briefing:
    """The briefing for the region (default: the province) — and, given, one sending unit — on ``as_of``
    (default today). ``rules``: the sections to include (default all, in the order of RULE_KEYS).
    ``unmasked``: personal data (the named helpers over the cap) in clear; only for a caller allowed to."""
    as_of = as_of or settings.today()
    keys = list(RULE_KEYS) if not rules else [k for k in RULE_KEYS if k in set(rules)]
    unknown = set(rules or []) - set(RULE_KEYS)
    if unknown:
        raise ReportError(f"未知的指标 '{min(unknown)}'，应为 {'、'.join(RULE_KEYS)} 之一")
    region = (str(region).strip() or None) if region else None
    unit = (str(unit).strip() or None) if unit else None
    with Conn(bind) as conn:
        prov_code, prov_name = _province(conn)
        if region:
            info = region_info(conn, region)
            if info is None:
                raise ReportError(f"区划代码 '{region}' 不存在")
            if info["level"] == "province":
                region = None
        unit_name = None
        if unit:
            u = schema.units
            unit_name = conn.execute(select(u.c.name).where(u.c.unit_id == unit)).scalar()
            if unit_name is None:
                raise ReportError(f"派出单位 '{unit}' 不存在")
        if region:
            level, region_name = info["level"], info["name"]
        else:
            level, region_name = "province", prov_name
        scope = Scope(region, unit)
        before = previous_month_end(as_of)
        year = as_of.year - 1
        start, start_before = photo_period_start(as_of), photo_period_start(before)
        seated = None if (unit or not region) else set(list_units(conn, region)["unit_id"])
        unit_info = list_units(conn, None).set_index("unit_id") if not unit else None

        child = child_level(level)
        # a region whose only child has its own name (定州市 139001 → 定州市 130682) is ranked one level further
        # down, as on the dashboard (ui/filters.Filters.child)
        kids = list_regions(conn, region) if region else None
        if kids is not None and len(kids) == 1 and kids.iloc[0]["name"] == region_name:
            child = child_level(kids.iloc[0]["level"])
        sections = []
        for i, key in enumerate(keys):
            rule = RULES[key]
            total = _total(conn, key, as_of, scope, year, start)
            if key == "ratings":
                prev = _total(conn, key, as_of, scope, year - 1, start)
                label, period = f"{year - 1}年度", f"{year}年度"
            elif key == "photos":
                prev = _total(conn, key, before, scope, year, start_before)
                label = f"截至{date_zh(before)}的12个月"
                period = f"{date_zh(start)}至{date_zh(as_of)}"
            else:
                prev = _total(conn, key, before, scope, year, start)
                label, period = date_zh(before), None
            lvl = child
            groups = _metric(conn, key, as_of, lvl, scope, year, start) if lvl else pd.DataFrame()
            regions = rank(rule, _derive_frame(key, groups)) if lvl else None
            units = None
            if not unit:
                by_unit = _metric(conn, key, as_of, "unit", ALL if seated is not None else scope, year, start)
                if seated is not None:
                    by_unit = by_unit[by_unit["code"].isin(seated)]
                units = rank(rule, _derive_frame(key, by_unit.reset_index(drop=True)))
                units["level"] = units["code"].map(unit_info["level"]).map(UNIT_LEVEL_ZH)
                units["region_name"] = units["code"].map(unit_info["region_name"])
                units["region_code"] = units["code"].map(unit_info["region_code"])
            s = Section(rule, NUMERALS[i], total, prev, label, period,
                        regions if regions is not None else pd.DataFrame(columns=["code", "name", rule.problem, "rate"]),
                        lvl, units)
            if key == "cap" and total["violators"]:
                s.cases = pb.cap_violators(conn, as_of, scope, detail=True, unmasked=unmasked, limit=CASES_N)
            s.text = section_text(s, region_name if not unit_name else unit_name)
            sections.append(s)

        items = supervision_items(conn, as_of, scope)
        supervision = _supervision_by_order(conn, items)
        annex = _annex(sections)
    summary = _summary(region_name if not unit_name else unit_name, as_of, sections)
    return Briefing(as_of=as_of, before=before, year=year, region_code=region or (None if unit else prov_code),
                    region_name=region_name, region_level=level, unit_id=unit, unit_name=unit_name,
                    sections=sections, summary=summary, supervision=supervision, annex=annex, unmasked=unmasked,
                    complete=keys == list(RULE_KEYS), issued_on=settings.today(), photo_start=start)


ANNEX_COLS = (("uncovered", "驻村未覆盖户", "coverage"), ("violators", "超上限责任人", "cap"),
              ("overdue", "逾期结对", "cadence"), ("missing", "未考核责任人", "ratings"),
              ("unapproved", "未批准调换", "replacements"))


def _annex(sections: list[Section]) -> pd.DataFrame:
    """The sending units of the scope with at least one problem (photos are a rate, not a problem, and are
    left out), by their region's code, then unit id: unit_id, name, level, region_name and one count per rule."""
    frames = {s.key: s.units for s in sections if s.units is not None}
    cols = ["code", "name", "level", "region_name"] + [c for c, _, k in ANNEX_COLS if k in frames]
    if not frames:
        return pd.DataFrame(columns=cols)
    base = pd.concat([f[["code", "name", "level", "region_name", "region_code"]] for f in frames.values()])
    base = base.drop_duplicates("code")
    for col, _, k in ANNEX_COLS:
        if k in frames:
            base = base.merge(frames[k][["code", col]], on="code", how="left")
            base[col] = base[col].fillna(0).astype("int64")
    counts = [c for c in cols[4:]]
    base = base[base[counts].sum(axis=1) > 0] if counts else base.iloc[0:0]
    return base.sort_values(["region_code", "code"], kind="stable")[cols].reset_index(drop=True)


def _summary(name: str, as_of: dt.date, sections: list[Section]) -> str:
    parts = []
    for s in sections:
        t, b, lab = s.total, s.before, s.before_label
        if s.key == "coverage":
            parts.append(f"结对覆盖率{pct(t['rate'])}{_paren(rate_change(t['rate'], b and b['rate'], lab))}，"
                         f"未覆盖在帮贫困户{num(t['uncovered'])}户")
        elif s.key == "cap":
            parts.append(f"帮扶超过{rules.CAP}户的责任人{num(t['violators'])}名"
                         f"{_paren(count_change(t['violators'], b and b['violators'], '名', lab))}")
        elif s.key == "cadence":
            parts.append(f"走访逾期结对{num(t['overdue'])}个"
                         f"{_paren(count_change(t['overdue'], b and b['overdue'], '个', lab))}，"
                         f"走访合规率{pct(t['rate'])}")
        elif s.key == "photos":
            parts.append(f"近12个月入户走访照片上传率{pct(t['rate'])}")
        elif s.key == "ratings":
            parts.append(f"{s.period}未考核责任人{num(t['missing'])}名")
        elif s.key == "replacements":
            parts.append(f"未经批准的调换{num(t['unapproved'])}次"
                         f"{_paren(count_change(t['unapproved'], b and b['unapproved'], '次', lab))}")
    return (f"根据帮扶责任人监测看板数据，截至{date_zh(as_of)}，{name}" + "；".join(parts) +
            "。现将有关情况通报如下。")
