"""The one colour palette of the dashboard: good is green, warning amber, bad red, everywhere.

The bands below only colour figures; they are display choices, not rules (RULES.md holds the rules).
"""

from __future__ import annotations

GOOD = "#1B7F3B"
WARN = "#B86E00"
BAD = "#C62828"
NEUTRAL = "#6B7280"
PRIMARY = "#1F4E9C"
LIGHT_GRID = "#E5E7EB"

# meeting mode (dark, for projection)
DARK_BG = "#0B1220"
DARK_PANEL = "#152033"
DARK_FG = "#FFFFFF"
DARK_MUTED = "#B8C4D6"
DARK_GOOD = "#3DDC84"
DARK_WARN = "#FFB020"
DARK_BAD = "#FF5A5A"

FONT_FAMILY = '"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC","Heiti SC",sans-serif'

GRADE_ORDER = ["excellent", "qualified", "unqualified", "missing"]
GRADE_LABELS = {"excellent": "优秀", "qualified": "合格", "unqualified": "不合格", "missing": "未考核"}
GRADE_COLORS = {"excellent": GOOD, "qualified": "#5B8FD6", "unqualified": BAD, "missing": "#A8AFBA"}
MODE_COLORS = {"入户走访": PRIMARY, "电话": "#8E6BBF", "短信": "#A8AFBA", "微信": "#2AA198"}

# The status thresholds (green / amber / red) of every rate, defined here once: value >= good -> GOOD,
# >= warn -> WARN, else BAD (higher is better). Tiles, ranking bars, maps and the legends all read them.
BANDS = {
    "coverage": (0.99, 0.97),
    "compliance": (0.90, 0.80),
    "photos": (0.80, 0.60),
}
BAND_LABELS = {"coverage": "结对覆盖率", "compliance": "走访合规率", "photos": "照片上传率"}

# Fixed colour ranges of the maps, per metric (the same colour means the same figure on every view):
# (lowest, highest) of the colour bar; figures beyond take the end colour. Rates with BANDS above use
# their thresholds for the colour stops (see scale_stops).
MAP_RANGES = {
    "coverage": (0.90, 1.0),
    "cadence": (0.60, 1.0),
    "cap": (0.0, 10.0),  # per 100 helpers, lower is better
    "ratings": (0.0, 0.20),  # unqualified share, lower is better
}
MAP_BANDS = {"coverage": "coverage", "cadence": "compliance"}


def band_color(value: float | None, kind: str, dark: bool = False) -> str:
    """The good/warning/bad colour of a rate (higher is better) under the display bands of `kind`."""
    good, warn = BANDS[kind]
    if value is None:
        return NEUTRAL
    if value >= good:
        return DARK_GOOD if dark else GOOD
    if value >= warn:
        return DARK_WARN if dark else WARN
    return DARK_BAD if dark else BAD


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def legend_items(kind: str) -> list[tuple[str, str]]:
    """(label, band) of the three bands of `kind`, e.g. ("≥ 90%", "good"), ("80%–90%", "warn"), ("< 80%", "bad")."""
    good, warn = BANDS[kind]
    return [(f"≥ {_pct(good)}", "good"), (f"{_pct(warn)}–{_pct(good)}", "warn"), (f"< {_pct(warn)}", "bad")]


def legend_text(kind: str) -> str:
    """One line in words: 走访合规率：绿色 ≥ 90%，黄色 80%–90%，红色 < 80%."""
    names = {"good": "绿色", "warn": "黄色", "bad": "红色"}
    return f"{BAND_LABELS[kind]}：" + "，".join(f"{names[b]} {t}" for t, b in legend_items(kind))


def band_colors(dark: bool = False) -> dict[str, str]:
    return ({"good": DARK_GOOD, "warn": DARK_WARN, "bad": DARK_BAD} if dark
            else {"good": GOOD, "warn": WARN, "bad": BAD})


def count_color(value: int | None, dark: bool = False) -> str:
    """Counts of problems: zero is good, anything else is bad."""
    if not value:
        return DARK_GOOD if dark else GOOD
    return DARK_BAD if dark else BAD


def style(fig, title: str, x_title: str | None = None, y_title: str | None = None, dark: bool = False,
          height: int | None = None, legend: bool = True):
    """Chinese title and axis titles, the palette's fonts and grid; returns the figure.

    The y-axis title is set horizontally above the axis's tick labels (plotly would turn it 90°, and
    Chinese text and brackets read badly sideways). Charts whose title already names the rows (the
    horizontal ranking bars: 各市…, 派出单位…) pass no y title."""
    fg = DARK_FG if dark else "#111827"
    top = 70 if dark else 50
    fig.update_layout(
        title=dict(text=title, font=dict(size=30 if dark else 18, color=fg), x=0, xanchor="left"),
        font=dict(family=FONT_FAMILY, size=22 if dark else 13, color=fg),
        paper_bgcolor=DARK_BG if dark else "#FFFFFF",
        plot_bgcolor=DARK_BG if dark else "#FFFFFF",
        separators=".,",
        margin=dict(l=10, r=30, t=top + (24 if y_title and title else 0), b=10),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        hoverlabel=dict(font=dict(family=FONT_FAMILY)),
    )
    grid = "#2A3A55" if dark else LIGHT_GRID
    fig.update_xaxes(title_text=x_title, gridcolor=grid, zerolinecolor=grid, automargin=True)
    fig.update_yaxes(title_text=None, gridcolor=grid, zerolinecolor=grid, automargin=True)
    if y_title:
        fig.add_annotation(text=y_title, xref="paper", yref="paper", x=0, y=1, xanchor="right", yanchor="bottom",
                           yshift=6, showarrow=False, align="right", name="y-title",
                           font=dict(size=18 if dark else 12, color=DARK_MUTED if dark else NEUTRAL))
    if height:
        fig.update_layout(height=height)
    return fig


# The normal pages' CSS (app.py puts it on every page). A tile's label and its change wrap onto a second line
# instead of being cut ("超上限责…", "+0.7 个百…" at 1366 px): Streamlit cuts them to one line with an ellipsis.
PAGE_CSS = """
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"],
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"],
[data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"] p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere; line-height: 1.35;
}
[data-testid="stMetricLabel"] { height: auto !important; min-height: 1.5rem; align-items: flex-start; }
[data-testid="stMetricDelta"] { height: auto !important; }
/* segmented controls (the map's 指标, 分组) wrap onto a second row instead of scrolling out of a phone's screen */
[data-testid="stButtonGroup"] [role="radiogroup"] { flex-wrap: wrap; overflow: visible; row-gap: 0.25rem; }
/* the page starts under the header's row (3.75rem), not 6rem down: on a 768 px projector the first figures show */
[data-testid="stMainBlockContainer"] { padding-top: 4rem; }
"""
