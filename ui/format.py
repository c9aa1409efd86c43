"""Numbers, dates and deltas formatted for Chinese readers."""

from __future__ import annotations

import datetime as dt
import re

from data_access import settings

DASH = "—"


def rate(part: int | float | None, whole: int | float | None) -> float | None:
    """part / whole, or None where there is nothing to divide."""
    if not whole or part is None:
        return None
    return part / whole


def pct(x: float | None, digits: int = 1) -> str:
    """0.97345 -> '97.3%'."""
    if x is None:
        return DASH
    return f"{x * 100:.{digits}f}%"


def num(n: int | float | None) -> str:
    """12345 -> '12,345'."""
    if n is None:
        return DASH
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def pp_delta(cur: float | None, prev: float | None) -> str | None:
    """Change of a rate in percentage points: '+0.3 个百分点'; None when either side is missing."""
    if cur is None or prev is None:
        return None
    d = round((cur - prev) * 100, 1)
    if d == 0:
        return "持平"
    return f"{d:+.1f} 个百分点"


def count_delta(cur: int | None, prev: int | None) -> str | None:
    """Change of a count: '+12' / '-3'; '持平' when unchanged."""
    if cur is None or prev is None:
        return None
    d = int(cur) - int(prev)
    if d == 0:
        return "持平"
    return f"{d:+,}"


def date_zh(d: dt.date | None) -> str:
    if d is None:
        return DASH
    return f"{d.year}年{d.month}月{d.day}日"


def computed_zh(stamp: str | None) -> str:
    """When stored figures were computed, in Beijing time: "数据计算于 11月29日 08:05"; for stamp None
    (the date is not stored) the page says that it computes live and may be slow — never silently."""
    if not stamp:
        return "该日期无预计算数据，本页数字为实时计算，可能需要较长时间"
    try:
        at = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return "数据计算时间未知"
    if at.tzinfo is not None:
        at = settings.now(at)
    return f"数据计算于 {at.month}月{at.day}日 {at:%H:%M}（北京时间）"


def month_zh(d: dt.date) -> str:
    return f"{d.year}年{d.month}月"


# ------------------------------------------------------------------------------------------- ledger text
# Ledger values (names of units, helpers, departments, regions, household heads; ids) and URL parameters
# are data, never markup. Every place that shows one in an element that renders Markdown (st.markdown,
# title, caption, alerts, metric/widget/expander/tab labels) passes it through md_text; plotly labels
# (ticks, hover text, titles, legend names) and hand-written HTML pass it through html_text. Widgets
# that show plain text (st.selectbox options, st.dataframe cells, st.text) take the value as it is.

# CommonMark lets every ASCII punctuation character be backslash-escaped, and an escaped one is plain
# text: no link, image, emphasis, code, HTML tag, heading, list, table, math ($), :colour[...] or
# :material/...: directive can start. Line breaks become spaces (a blank line would end an HTML block).
_MD_PUNCT = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
_LINE_BREAK = re.compile(r"\r\n?|\n")
# Streamlit rewrites plain text after the escapes are resolved: GFM autolinks (http://…, www.…, a@b.c),
# the :streamlit: logo and the arrows -> <- <-> -- >= <= ~=. An invisible word joiner (U+2060) splits
# those sequences so that they stay text: after ':' and '@', inside 'www.', between the arrow characters.
_WJ = "\u2060"
_SPLIT = re.compile(r"(?<=[:@])|(?<=www)(?=\.)|(?<=[-<>~])(?=[->=])", re.IGNORECASE)
# plotly reads numeric entities (&#34;, not &quot;). ':' too: Streamlit rewrites ":material/" in the whole
# source of st.markdown, HTML included, before parsing it.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", ":": "&#58;"}
_HTML_RE = re.compile(r"[&<>\":]")
_FILE_UNSAFE = re.compile(r"[^\w.\-]+")


def md_text(value) -> str:
    """A value shown as itself where Streamlit renders Markdown: '[x](http://e)' stays that text."""
    s = _LINE_BREAK.sub(" ", "" if value is None else str(value))
    return _MD_PUNCT.sub(r"\\\1", _SPLIT.sub(_WJ, s))


def html_text(value) -> str:
    """A value shown as itself in plotly text (tick labels, hover, titles, legend) or in hand-written HTML
    (st.markdown with unsafe_allow_html): no <tag>, &entity; or :directive: of the value is read as markup."""
    s = _LINE_BREAK.sub(" ", "" if value is None else str(value))
    return _HTML_RE.sub(lambda m: _HTML[m.group()], s)


def safe_stem(value) -> str:
    """A download file name's stem from ledger ids: letters (Chinese too), digits, '_', '-' and '.' only."""
    return _FILE_UNSAFE.sub("_", str(value)).strip("._") or "export"
