"""A briefing's charts as PNG images (matplotlib, Agg, in Noto Sans CJK SC).

matplotlib was measured against plotly's static export (kaleido 1.5 driving Debian's chromium) on this machine:
a chart took 0.4 s (1.3 s for the first in a process) against 1.2–1.7 s per image on a kept-open browser and
11–12 s for the first; six charts per briefing, so matplotlib, with no browser process beside the dashboard.
The object API (Figure + FigureCanvasAgg, never pyplot) keeps it safe in the dashboard's threads.
"""

from __future__ import annotations

import io
import threading

import pandas as pd

from .fonts import SANS, font_file

# the dashboard's palette (ui/theme.py: data_access does not import ui)
GOOD, WARN, BAD, NEUTRAL, PRIMARY = "#1B7F3B", "#B86E00", "#C62828", "#6B7280", "#1F4E9C"
GRID = "#E5E7EB"
BANDS = {"coverage": (0.99, 0.97), "cadence": (0.90, 0.80), "photos": (0.80, 0.60)}
GRADES = (("excellent", "优秀", GOOD), ("qualified", "合格", "#5B8FD6"), ("unqualified", "不合格", BAD),
          ("missing", "未考核", "#A8AFBA"))
WIDTH_IN = 6.1  # the A4 type area is 156 mm wide
DPI = 200

_lock = threading.Lock()
_ready = False


def _setup() -> None:
    global _ready
    with _lock:
        if _ready:
            return
        from matplotlib import font_manager

        for style in ("Regular", "Bold"):
            font_manager.fontManager.addfont(font_file(SANS, style))
        _ready = True


def _figure(height_in: float):
    _setup()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _color(rule: str, rate: float | None) -> str:
    if rate is None or pd.isna(rate):
        return NEUTRAL
    if rule in BANDS:
        good, warn = BANDS[rule]
        return GOOD if rate >= good else WARN if rate >= warn else BAD
    return BAD if rate > 0 else GOOD  # a share of problems: any is bad


def _style(ax) -> None:
    ax.set_axisbelow(True)
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8.5)


def ranking(rule: str, df: pd.DataFrame, axis_label: str, n: int) -> bytes | None:
    """Horizontal bars of the groups' ``rate`` (the worst ``n`` of ``df``, already worst first; worst on top),
    each labelled with its percentage. None when there is nothing to draw."""
    _setup()
    df = df[df["rate"].notna()].head(n)
    if df.empty:
        return None
    fig = _figure(0.7 + 0.21 * len(df))
    ax = fig.add_subplot(111)
    names = [str(x) for x in df["name"]][::-1]
    rates = [float(x) * 100 for x in df["rate"]][::-1]
    ax.barh(range(len(df)), rates, color=[_color(rule, r / 100) for r in rates], height=0.66)
    ax.set_yticks(range(len(df)), labels=names, fontfamily=SANS)
    ax.set_xlim(0, max(rates + [1.0]) * 1.14)  # room for the labels
    for i, r in enumerate(rates):
        ax.text(r + ax.get_xlim()[1] * 0.01, i, f"{r:.1f}%", va="center", fontsize=8, fontfamily=SANS)
    ax.set_xlabel(axis_label + "（%）", fontsize=9, fontfamily=SANS)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}" if v <= 100 else "")
    _style(ax)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def grade_shares(df: pd.DataFrame, n: int) -> bytes | None:
    """Stacked bars: each group's helpers by grade (优秀, 合格, 不合格, 未考核) as shares; ``df`` worst first."""
    df = df.head(n)
    totals = [sum(int(r[g]) for g, _, _ in GRADES) for _, r in df.iterrows()]
    keep = [i for i, t in enumerate(totals) if t]
    if not keep:
        return None
    df = df.iloc[keep]
    totals = [totals[i] for i in keep]
    fig = _figure(1.0 + 0.21 * len(df))
    ax = fig.add_subplot(111)
    y = list(range(len(df)))[::-1]
    left = [0.0] * len(df)
    for g, label, color in GRADES:
        share = [int(r[g]) / t * 100 for (_, r), t in zip(df.iterrows(), totals)]
        ax.barh(y, share, left=left, color=color, height=0.62, label=label)
        left = [a + b for a, b in zip(left, share)]
    ax.set_yticks(y, labels=[str(x) for x in df["name"]], fontfamily=SANS)
    ax.set_xlim(0, 100)
    ax.set_xlabel("占责任人（%）", fontsize=9, fontfamily=SANS)
    ax.legend(ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.28 if len(df) < 4 else -0.1 - 0.4 / len(df)),
              frameon=False, prop={"family": SANS, "size": 8.5})
    _style(ax)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def section_chart(section, n: int) -> bytes | None:
    """The chart of a section: its child groups (every one, up to ``n``, worst first)."""
    if section.regions is None or section.regions.empty or not section.region_level:
        return None
    if section.key == "ratings":
        return grade_shares(section.regions, n)
    df = section.regions
    if not section.rule.higher_is_better:  # a share of problems: the groups that have any
        df = df[df[section.rule.problem] > 0]
    return ranking(section.key, df, section.rule.rate_label, n)


def charted(section, n: int):
    """The groups a section's chart draws (as ``section_chart``)."""
    df = section.regions
    if section.key != "ratings" and not section.rule.higher_is_better:
        df = df[df[section.rule.problem] > 0]
    return df[df["rate"].notna()].head(n)
