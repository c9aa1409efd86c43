"""Chart builders: Chinese titles, axis labels and hover text, the palette of ui.theme."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from data_access import shares

from . import theme
from .format import html_text, num, pct

HOVER = "%{customdata[1]}<extra></extra>"


def _height(n: int, per: int = 30, base: int = 120, lo: int = 260, hi: int = 1400) -> int:
    return max(lo, min(hi, base + per * n))


def axis_start(values: list[float]) -> float:
    """Where a rate axis starts: 5 points below the lowest figure, down to a multiple of 5 %, never below 0
    (and 0 when the lowest figure is under 50 %: then the whole scale reads better)."""
    if not values:
        return 0.0
    low = min(values)
    if low < 0.5:
        return 0.0
    return max(0.0, math.floor((low - 0.05) * 20 + 1e-9) / 20)


def ranking_bar(df: pd.DataFrame, value: str, title: str, axis_title: str, *, kind: str = "rate",
                band: str | None = None, hover: list[str] | None = None, order: str | None = None,
                dark: bool = False, height: int | None = None, label: str = "name", code: str = "code",
                font_size: int | None = None, note: str | None = None) -> go.Figure:
    """Horizontal bars sorted top-down by value, worst first by default (`order` None: a rate from the
    lowest, a count of problems from the highest; or 'desc' / 'asc'). `kind` 'rate' (0..1, shown
    as %, coloured by the display band) or 'count' of problems (zero green, else red). A rate's axis
    starts near the lowest figure (a multiple of 5 %, said in the axis title) so that 90 % and 95 % differ.
    `note`: a format string over the row appended to each bar's label, e.g. "{overdue}/{active_pairings}".
    No y-axis title: the chart title names the rows (各市…, …的派出单位).
    customdata[0] is the row's code (for clicks), customdata[1] the hover text. Row labels are ledger
    names: shown as text (format.html_text), never read as plotly's HTML."""
    d = df.copy()
    d = d[d[value].notna()]
    if order is None:
        order = "asc" if kind == "rate" else "desc"
    d = d.sort_values(value, ascending=order == "asc", kind="stable")
    if kind == "rate":
        colors = [theme.band_color(x, band, dark) for x in d[value]] if band else [theme.PRIMARY] * len(d)
        text = [pct(x) for x in d[value]]
    else:
        colors = [theme.count_color(x, dark) for x in d[value]]
        text = [num(x) for x in d[value]]
    shown = [f"{t}（{note.format(**r)}）" for t, (_, r) in zip(text, d.iterrows())] if note else text
    hover_text = []
    for i, (_, r) in enumerate(d.iterrows()):
        lines = [f"<b>{html_text(r[label])}</b>", f"{axis_title}：{text[i]}"]
        lines += [line.format(**r) for line in (hover or [])]
        hover_text.append("<br>".join(lines))
    fig = go.Figure(
        go.Bar(
            x=d[value], y=[html_text(n) for n in d[label]], orientation="h", marker_color=colors, text=shown,
            textposition="outside",
            cliponaxis=False, customdata=list(zip(d[code], hover_text)), hovertemplate=HOVER,
            textfont=dict(size=font_size) if font_size else None, constraintext="none",
        )
    )
    lo = axis_start([float(x) for x in d[value]]) if kind == "rate" else 0.0
    x_title = f"{axis_title}（横轴从 {lo:.0%} 起）" if kind == "rate" and lo > 0 else axis_title
    theme.style(fig, title, x_title, dark=dark, height=height or _height(len(d)), legend=False)
    fig.update_yaxes(autorange="reversed", type="category")
    if kind == "rate":
        # the axis runs past 100% to leave room for the labels; its ticks stop at 100%
        span = 1.0 - lo
        step = 0.05 if span <= 0.3 else 0.1 if span <= 0.6 else 0.2
        fig.update_xaxes(tickformat=".0%", range=[lo, 1.0 + span * (0.4 if note else 0.2)],
                         tickvals=[round(lo + i * step, 4) for i in range(int(round(span / step)) + 1)])
    else:
        top = max([0] + [int(x) for x in d[value]])
        fig.update_xaxes(tickformat=",d", rangemode="tozero", **({"dtick": 1} if top <= 8 else {}))  # no "1 1 2 2"
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def trend_lines(tr: pd.DataFrame) -> go.Figure:
    """Coverage rate and cadence compliance at the last 12 month-ends."""
    fig = go.Figure()
    months = [f"{d.year}年{d.month}月" for d in tr["date"]]
    for col, name, color in (("coverage_rate", "结对覆盖率", theme.PRIMARY), ("compliance", "走访合规率", theme.GOOD)):
        vals = tr[col]
        fig.add_trace(go.Scatter(
            x=months, y=vals, name=name, mode="lines+markers", line=dict(color=color, width=3),
            customdata=[[d.isoformat(), f"{m}：{name} {pct(v)}"] for d, m, v in zip(tr["date"], months, vals)],
            hovertemplate=HOVER,
        ))
    theme.style(fig, "近12个月趋势（各月末）", "月份", "比率", height=360)
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


# days per bar; gaps of GAP_CAP days or more share the last bar (the buckets problems.gap_histogram counts)
from data_access.summary import GAP_BIN, GAP_CAP  # noqa: E402


def gap_histogram(gaps: pd.DataFrame) -> go.Figure:
    """Distribution of days since the last in-home visit (or pairing start) over active pairings,
    overdue ones in red, in 15-day bars; gaps of 180 days or more are counted in one last bar
    ("≥180天") so that a few very old gaps do not stretch the axis. The 2- and 4-month intervals marked.
    ``gaps``: problems.gap_histogram's counts (start, on_time, overdue)."""
    bins = [int(b) for b in gaps["start"]]
    spans = [f"{b}–{b + GAP_BIN - 1} 天" if b < GAP_CAP else f"{GAP_CAP} 天及以上" for b in bins]
    fig = go.Figure()
    for col, name, color in (("on_time", "未逾期", theme.GOOD), ("overdue", "逾期", theme.BAD)):
        counts = [int(x) for x in gaps[col]]
        fig.add_trace(go.Bar(
            x=[b + GAP_BIN / 2 for b in bins], y=list(counts), width=GAP_BIN * 0.95, name=name, marker_color=color,
            customdata=[[b, f"{name}<br>间隔 {s}<br>结对数 {num(n)}"] for b, s, n in zip(bins, spans, counts)],
            hovertemplate=HOVER,
        ))
    fig.update_layout(barmode="stack", bargap=0)
    theme.style(fig, "距最近一次入户走访的天数分布", "间隔天数", "结对数", height=380)
    ticks = list(range(0, GAP_CAP, 30))
    fig.update_xaxes(range=[0, GAP_CAP + GAP_BIN], tickvals=ticks + [GAP_CAP + GAP_BIN / 2],
                     ticktext=[str(t) for t in ticks] + [f"≥{GAP_CAP}"])
    for days, text in ((61, "约2个月（一般结对）"), (122, "约4个月（省直处室轮流走访）")):
        fig.add_vline(x=days, line_width=2, line_dash="dash", line_color=theme.WARN,
                      annotation_text=text, annotation_position="top right",
                      annotation_font=dict(color=theme.WARN, size=12))
    fig.update_yaxes(tickformat=",d")
    return fig


def grade_shares(df: pd.DataFrame, title: str, label: str = "name", code: str = "code") -> go.Figure:
    """Stacked 100% bars of excellent / qualified / unqualified per row as shares of the helpers rated
    (data_access.shares: the one definition, also the tiles'), left to right in that order, the legend in the
    same order (plotly reverses a stacked chart's legend by default). The helpers missing a rating are no
    grade: their number is written under the row's name ("未考核 3 人"; in the hover with their share of the
    helpers due a rating), which keeps the chart's width on a phone."""
    d = df.copy()
    d["_rated"] = [shares.rated(r) for _, r in d.iterrows()]
    d = d[d["_rated"] + d["missing"] > 0].sort_values(code, kind="stable")
    sh = [shares.rating_shares(r) for _, r in d.iterrows()]
    labels = [html_text(n) for n in d[label]]
    missing = [f"未考核 {num(k)} 人（占应考核 {pct(s['missing'])}）" for k, s in zip(d["missing"], sh)]
    fig = go.Figure()
    for g in theme.GRADE_ORDER[:3]:
        share = [s[g] or 0.0 for s in sh]
        name = theme.GRADE_LABELS[g]
        fig.add_trace(go.Bar(
            x=share, y=labels, orientation="h", name=name, marker_color=theme.GRADE_COLORS[g],
            customdata=[[c, f"<b>{n}</b><br>{name}：{num(k)} 人（占已考核 {pct(s)}）<br>{mi}"]
                        for c, n, k, s, mi in zip(d[code], labels, d[g], share, missing)],
            hovertemplate=HOVER, text=[pct(s) if s >= 0.06 else "" for s in share], textposition="inside",
            insidetextanchor="middle",
        ))
    fig.update_layout(barmode="stack", clickmode="event+select", dragmode=False)
    theme.style(fig, title, "占已考核责任人的比例", height=_height(len(d), per=36))
    fig.update_layout(legend_traceorder="normal")
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    ticks = [f'{n}<br><span style="font-size:11px;color:{theme.NEUTRAL}">未考核 {num(k)} 人</span>' if k else n
             for n, k in zip(labels, d["missing"])]
    fig.update_yaxes(autorange="reversed", type="category", tickmode="array", tickvals=labels, ticktext=ticks)
    return fig


def years_grade_shares(rows: pd.DataFrame) -> go.Figure:
    """rows: year, excellent, qualified, unqualified, missing."""
    d = rows.copy()
    d["name"] = [f"{y}年度" for y in d["year"]]
    d["code"] = d["year"].astype(str)
    fig = grade_shares(d, "历年考核等次分布")
    fig.update_yaxes(autorange=True)
    return fig


IN_HOME = "入户走访"


def visit_timeline(visits: pd.DataFrame, title: str = "走访记录时间线") -> go.Figure:
    """One point per contact: date × household, coloured by mode. Hollow means one thing only: an in-home
    visit without a photo (round points are in-home visits, filled when a photo was uploaded); phone, SMS and
    WeChat contacts, which need no photo and do not count as visits, are small filled diamonds."""
    fig = go.Figure()
    for mode, color in theme.MODE_COLORS.items():
        sub = visits[visits["mode"] == mode]
        if sub.empty:
            continue
        photo = sub["photo_uploaded"].fillna(False).astype(bool)
        home = mode == IN_HOME
        symbols = [("circle" if p else "circle-open") if home else "diamond" for p in photo]
        fig.add_trace(go.Scatter(
            x=sub["visit_date"], y=[html_text(h) for h in sub["household_id"]], mode="markers",
            name=mode if home else f"{mode}（不计走访）",
            marker=dict(color=color, size=11 if home else 8, symbol=symbols, line=dict(width=2, color=color)),
            customdata=[[v, f"{d:%Y-%m-%d}<br>户：{html_text(h)}（{html_text(n or '—')}）<br>方式：{mode}"
                                + (f"<br>照片：{'已上传' if p else '未上传'}" if home else "<br>不计入走访频次")]
                        for v, d, h, n, p in zip(sub["visit_id"], sub["visit_date"], sub["household_id"],
                                                 sub["head_name"], photo)],
            hovertemplate=HOVER,
        ))
    n = visits["household_id"].nunique() if len(visits) else 1
    theme.style(fig, title, "走访日期", "户编号", height=_height(n, per=34, base=160, lo=300))
    fig.update_xaxes(tickformat="%Y-%m")
    fig.update_yaxes(type="category")
    return fig


def photo_bars(df: pd.DataFrame, title: str) -> go.Figure:
    d = df.copy()
    d["rate"] = d["with_photo"] / d["in_home_visits"]
    return ranking_bar(d, "rate", title, "照片上传率", band="photos",
                       hover=["入户走访：{in_home_visits:,} 次", "上传照片：{with_photo:,} 次"])
