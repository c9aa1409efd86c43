"""Chart builders: Chinese titles, axis labels and hover text, the palette of ui.theme."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go

from . import theme
from .format import num, pct

HOVER = "%{customdata[1]}<extra></extra>"


def _height(n: int, per: int = 30, base: int = 120, lo: int = 260, hi: int = 1400) -> int:
    return max(lo, min(hi, base + per * n))


def ranking_bar(df: pd.DataFrame, value: str, title: str, axis_title: str, *, kind: str = "rate",
                band: str | None = None, hover: list[str] | None = None, order: str = "desc",
                dark: bool = False, height: int | None = None, label: str = "name", code: str = "code",
                font_size: int | None = None, y_title: str | None = None) -> go.Figure:
    """Horizontal bars sorted top-down by value (`order` 'desc' or 'asc'). `kind` 'rate' (0..1, shown
    as %, coloured by the display band) or 'count' of problems (zero green, else red).
    customdata[0] is the row's code (for clicks), customdata[1] the hover text."""
    d = df.copy()
    d = d[d[value].notna()]
    d = d.sort_values(value, ascending=order == "asc", kind="stable")
    if kind == "rate":
        colors = [theme.band_color(x, band, dark) for x in d[value]] if band else [theme.PRIMARY] * len(d)
        text = [pct(x) for x in d[value]]
    else:
        colors = [theme.count_color(x, dark) for x in d[value]]
        text = [num(x) for x in d[value]]
    hover_text = []
    for i, (_, r) in enumerate(d.iterrows()):
        lines = [f"<b>{r[label]}</b>", f"{axis_title}：{text[i]}"] + [line.format(**r) for line in (hover or [])]
        hover_text.append("<br>".join(lines))
    fig = go.Figure(
        go.Bar(
            x=d[value], y=d[label], orientation="h", marker_color=colors, text=text, textposition="outside",
            cliponaxis=False, customdata=list(zip(d[code], hover_text)), hovertemplate=HOVER,
            textfont=dict(size=font_size) if font_size else None, constraintext="none",
        )
    )
    theme.style(fig, title, axis_title, y_title, dark=dark, height=height or _height(len(d)), legend=False)
    fig.update_yaxes(autorange="reversed", type="category")
    if kind == "rate":
        lo = min([0.0] + [float(x) for x in d[value]])
        fig.update_xaxes(tickformat=".0%", range=[lo, 1.08])
    else:
        fig.update_xaxes(tickformat=",d", rangemode="tozero")
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


def gap_histogram(gaps: pd.DataFrame, as_of: dt.date) -> go.Figure:
    """Distribution of days since the last in-home visit (or pairing start) over active pairings,
    overdue ones in red; the 2- and 4-month intervals marked."""
    fig = go.Figure()
    bins = dict(start=0, size=15)
    for flag, name, color in ((False, "未逾期", theme.GOOD), (True, "逾期", theme.BAD)):
        sub = gaps[gaps["is_overdue"] == flag]
        fig.add_trace(go.Histogram(
            x=sub["gap_days"], name=name, marker_color=color, xbins=bins,
            hovertemplate=f"{name}<br>间隔 %{{x}} 天<br>结对数 %{{y:,}}<extra></extra>",
        ))
    fig.update_layout(barmode="stack", bargap=0.05)
    theme.style(fig, "距最近一次入户走访的天数分布", "间隔天数", "结对数", height=380)
    for days, text in ((61, "约2个月（一般结对）"), (122, "约4个月（省直处室轮流走访）")):
        fig.add_vline(x=days, line_width=2, line_dash="dash", line_color=theme.WARN,
                      annotation_text=text, annotation_position="top right",
                      annotation_font=dict(color=theme.WARN, size=12))
    fig.update_yaxes(tickformat=",d")
    return fig


def grade_shares(df: pd.DataFrame, title: str, label: str = "name", code: str = "code",
                 y_title: str | None = None) -> go.Figure:
    """Stacked 100% bars of excellent / qualified / unqualified / missing per row."""
    d = df.copy()
    d["total"] = d[theme.GRADE_ORDER].sum(axis=1)
    d = d[d["total"] > 0].sort_values(code, kind="stable")
    fig = go.Figure()
    for g in theme.GRADE_ORDER:
        share = d[g] / d["total"]
        name = theme.GRADE_LABELS[g]
        fig.add_trace(go.Bar(
            x=share, y=d[label], orientation="h", name=name, marker_color=theme.GRADE_COLORS[g],
            customdata=[[c, f"<b>{n}</b><br>{name}：{num(k)} 人（{pct(s)}）"]
                        for c, n, k, s in zip(d[code], d[label], d[g], share)],
            hovertemplate=HOVER, text=[pct(s) if s >= 0.06 else "" for s in share], textposition="inside",
            insidetextanchor="middle",
        ))
    fig.update_layout(barmode="stack", clickmode="event+select", dragmode=False)
    theme.style(fig, title, "占比", y_title, height=_height(len(d)))
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def years_grade_shares(rows: pd.DataFrame) -> go.Figure:
    """rows: year, excellent, qualified, unqualified, missing."""
    d = rows.copy()
    d["name"] = [f"{y}年度" for y in d["year"]]
    d["code"] = d["year"].astype(str)
    fig = grade_shares(d, "历年考核等次分布", y_title="考核年度")
    fig.update_yaxes(autorange=True)
    return fig


def visit_timeline(visits: pd.DataFrame, title: str = "走访记录时间线") -> go.Figure:
    """One point per contact: date × household, coloured by mode; hollow points: no photo."""
    fig = go.Figure()
    for mode, color in theme.MODE_COLORS.items():
        sub = visits[visits["mode"] == mode]
        if sub.empty:
            continue
        photo = sub["photo_uploaded"].fillna(False).astype(bool)
        fig.add_trace(go.Scatter(
            x=sub["visit_date"], y=sub["household_id"], mode="markers", name=mode,
            marker=dict(color=color, size=11, symbol=["circle" if p else "circle-open" for p in photo],
                        line=dict(width=2, color=color)),
            customdata=[[v, f"{d:%Y-%m-%d}<br>户：{h}（{n or '—'}）<br>方式：{mode}<br>照片：{'已上传' if p else '未上传'}"]
                        for v, d, h, n, p in zip(sub["visit_id"], sub["visit_date"], sub["household_id"],
                                                 sub["head_name"], photo)],
            hovertemplate=HOVER,
        ))
    n = visits["household_id"].nunique() if len(visits) else 1
    theme.style(fig, title, "走访日期", "户编号", height=_height(n, per=34, base=160, lo=300))
    fig.update_xaxes(tickformat="%Y-%m")
    fig.update_yaxes(type="category")
    return fig


def photo_bars(df: pd.DataFrame, title: str, y_title: str | None = None) -> go.Figure:
    d = df.copy()
    d["rate"] = d["with_photo"] / d["in_home_visits"]
    return ranking_bar(d, "rate", title, "照片上传率", band="photos",
                       hover=["入户走访：{in_home_visits:,} 次", "上传照片：{with_photo:,} 次"], y_title=y_title)
