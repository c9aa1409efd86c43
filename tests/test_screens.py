"""Issue 14 under AppTest: the meeting screen's month-on-month change, threshold legend, exit and
逾期未整改 tile; worst-first rankings whose rate axis starts near the lowest figure; a county-scope
screen ranks townships and units (no map of one polygon). The browser side (no scrolling at
1366×768 / 1920×1080, no overflow on a phone) is tests/test_screens_browser.py."""

from __future__ import annotations

import base64
import html as html_lib
import json

import numpy as np

from data_access import metrics as m
from data_access.dates import previous_month_end
from data_access.metrics import Scope
from ui import format as fmt
from ui import theme

from .test_pages import AS_OF, CHANG_AN, D, app_db, expected_totals, html, page_db, run  # noqa: F401


def _change(now: int, before: int) -> str:
    """What the tile says for a count: 较上月末 ▲3 / ▼3 / 持平."""
    if now == before:
        return "较上月末 持平"
    return f"较上月末 {'▲' if now > before else '▼'}{fmt.num(abs(now - before))}"


def _arr(v) -> list:
    """A plotly array from the figure's JSON (typed arrays arrive base64-encoded)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_meeting_screen_has_month_on_month_legend_exit_and_overdue_orders(app_db):
    _, engine = app_db
    at = run("meeting", as_of=D)
    text = html(at)
    now, last = expected_totals(engine, AS_OF), expected_totals(engine, previous_month_end(AS_OF))
    # month on month: each count tile against the same figure at the end of last month
    assert _change(now["overdue"], last["overdue"]) in text
    assert _change(now["violators"], last["violators"]) in text
    assert _change(now["unapproved"], last["unapproved"]) in text
    points = (now["coverage"] - last["coverage"]) * 100
    want = "较上月末 持平" if abs(points) < 0.05 else f"{'▲' if points > 0 else '▼'}{abs(points):.1f}个百分点"
    assert want in text
    # the supervision figure of the screen
    assert "逾期未整改" in text
    # the legend states the thresholds the colours use (ui/theme.BANDS, the one definition)
    for kind in ("coverage", "compliance"):
        for label, _ in theme.legend_items(kind):
            assert html_lib.escape(label) in text, label
    assert "颜色说明" in text
    # a visible way back to the dashboard
    links = at.get("page_link")
    assert [x.proto.label for x in links] == ["返回看板"]


def test_meeting_ranking_is_worst_first_on_an_axis_near_the_data(app_db):
    _, engine = app_db
    at = run("meeting", as_of=D)
    rank = _specs(at)[0]["data"][0]
    values = _arr(rank["x"])
    assert values == sorted(values), "the lowest compliance first (top of the chart)"
    lo = _specs(at)[0]["layout"]["xaxis"]["range"][0]
    assert lo <= min(values)
    if min(values) >= 0.5:  # 90 % and 95 % must look different: the axis starts near the data, not at 0
        assert lo > 0 and min(values) - lo <= 0.1
        assert f"横轴从 {lo:.0%} 起" in _specs(at)[0]["layout"]["xaxis"]["title"]["text"]
    cad = m.cadence(engine, AS_OF, "city", m.ALL)
    cad = cad[cad["active_pairings"] > 0]
    assert abs(min(values) - min(1 - cad["overdue"] / cad["active_pairings"])) < 1e-9


def test_meeting_county_scope_ranks_townships_and_units_not_one_polygon(app_db):
    _, engine = app_db
    at = run("meeting", as_of=D, region=CHANG_AN)
    specs = _specs(at)
    assert len(specs) == 2
    assert all(s["data"][0]["type"] == "bar" for s in specs)  # no map of a single county
    units = _arr(specs[1]["data"][0]["x"])
    cad = m.cadence(engine, AS_OF, "unit", Scope(region=CHANG_AN))
    assert sorted(units, reverse=True) == units  # the most overdue first
    assert max(units) == cad["overdue"].max()
    # a bar is never a whole screen: the axis keeps a full ranking's row slots
    assert specs[0]["layout"]["yaxis"]["range"][0] >= 10


def test_rate_bars_separate_90_from_95_and_put_the_worst_on_top():
    """No database: a ranking of 91 %, 95 % and 97 % starts its axis at 85 % (said in the axis title), the
    lowest on top; a count ranking puts the highest on top."""
    import pandas as pd

    from ui import charts

    df = pd.DataFrame({"code": ["a", "b", "c"], "name": ["甲", "乙", "丙"], "rate": [0.95, 0.91, 0.97]})
    fig = charts.ranking_bar(df, "rate", "各市", "走访合规率", band="compliance")
    assert list(fig.data[0].x) == [0.91, 0.95, 0.97]
    assert fig.layout.xaxis.range[0] == 0.85
    assert "横轴从 85% 起" in fig.layout.xaxis.title.text
    counts = pd.DataFrame({"code": ["a", "b"], "name": ["甲", "乙"], "n": [2, 7]})
    fig = charts.ranking_bar(counts, "n", "各市", "逾期", kind="count")
    assert list(fig.data[0].x) == [7, 2]


def test_overview_shows_the_worst_counties_and_units_of_the_province(app_db):
    _, engine = app_db
    at = run(as_of=D)
    by_title = {s["layout"]["title"]["text"]: s for s in _specs(at)}
    for by, what in (("county", "县（市、区）"), ("unit", "派出单位")):
        title = next((t for t in by_title if t.startswith("全省走访合规率最低的") and t.endswith(what)), None)
        assert title, (what, list(by_title))
        bars = _arr(by_title[title]["data"][0]["x"])
        cad = m.cadence(engine, AS_OF, by, m.ALL)
        cad = cad[cad["active_pairings"] >= 5]
        want = sorted(1 - cad["overdue"] / cad["active_pairings"])[:10]
        assert [round(x, 9) for x in bars] == [round(x, 9) for x in want]  # worst first, the worst ten

