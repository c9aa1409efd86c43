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
from data_access.scope import ALL, Scope
from ui import format as fmt
from ui import theme

from .test_pages import (  # noqa: F401
    AS_OF, CHANG_AN, D, all_text, app_db, deltas_shown, expected_totals, html, metrics_shown, page_db, run,
)


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
    cad = m.cadence(engine, AS_OF, "city", ALL)
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
        cad = m.cadence(engine, AS_OF, by, ALL)
        cad = cad[cad["active_pairings"] >= 5]
        want = sorted(1 - cad["overdue"] / cad["active_pairings"])[:10]
        assert [round(x, 9) for x in bars] == [round(x, 9) for x in want]  # worst first, the worst ten



# ------------------------------------------------------------------------------------------- issue 14: contradictions


def _chart(at, title_part: str) -> dict | None:
    return next((s for s in _specs(at) if title_part in s["layout"]["title"]["text"]), None)


def _grade_x(spec: dict, row: str) -> dict[str, float]:
    """{legend name: the bar's x} of one row of a grade chart (ui/charts.grade_shares)."""
    out = {}
    for tr in spec["data"]:
        if tr["type"] != "bar":
            continue
        ys = _arr(tr["y"])
        out[tr["name"]] = _arr(tr["x"])[ys.index(row)]
    return out


def test_ratings_tile_and_bars_use_one_base_for_a_grade_share(app_db):
    """优秀占比 on the tile, on the bar beside it and on the overview is one figure: excellent ÷ rated
    (data_access.shares), although some helpers are missing a rating (a different base gave 17.0 % / 16.4 %)."""
    from data_access import shares

    _, engine = app_db
    year = AS_OF.year - 1
    r = m.total_row(m.ratings(engine, year, "province", ALL), "ratings")
    assert r["missing"] > 0  # the case where the two bases differ
    want = shares.rating_shares(r)
    at = run("ratings", as_of=D)
    assert deltas_shown(at)["优秀"] == f"占已考核 {fmt.pct(want['excellent'])}"
    bars = _grade_x(_chart(at, "历年考核等次分布"), f"{year}年度")
    assert abs(bars["优秀"] - want["excellent"]) < 1e-9
    assert abs(bars["不合格"] - want["unqualified"]) < 1e-9
    assert abs(sum(bars.values()) - 1) < 1e-9  # the grades of the rated make 100 %; missing is written beside
    at = run(as_of=D)
    assert metrics_shown(at)[f"{year}年度优秀占比"] == fmt.pct(want["excellent"])


def test_ratings_history_respects_the_as_of_date(app_db):
    """As of 2025-06-30 the 2025 ratings (given after the year) are not in the ratings history."""
    at = run("ratings", as_of="2025-06-30")
    spec = _chart(at, "历年考核等次分布")
    years = set(_arr(spec["data"][0]["y"])) if spec else set()
    assert "2025年度" not in years
    assert "2025年度" not in all_text(at)


def test_ratings_year_without_ratings_or_pairings_is_no_green_check(app_db):
    """A year with nothing rated and nobody due (2023: every pairing starts in 2025): one honest line, no
    green "everyone rated" under "no ratings"."""
    at = run("ratings", as_of=D, year="2023")
    assert not at.success, [x.value for x in at.success]
    assert any("没有2023年度的考核等次" in x.value for x in at.info)


def test_unit_page_rating_column_agrees_with_its_missing_tile(app_db):
    """The unit page's 未考核 tile and its helpers' rating column say the same: a helper with no rating is
    未考核 when due one (M4) and 无需考核 otherwise — never a bare "—" beside "未考核 0"."""
    _, engine = app_db
    for year in (2024, 2025):
        at = run("units", as_of=D, unit="U3", year=str(year))
        tile = metrics_shown(at)[f"{year}年度未考核"]
        col = at.dataframe[0].value[f"{year}年度考核"]
        assert col.notna().all() and (col != "").all(), list(col)
        assert fmt.num(int((col == "未考核").sum())) == tile
        missing = m.total_row(m.ratings(engine, year, "province", Scope(unit="U3")), "ratings")["missing"]
        assert tile == fmt.num(missing)
        if year == 2024:  # B's pairing starts in 2025: no rating due for 2024
            assert "无需考核" in set(col) and tile == "0"


def test_hollow_points_on_the_visit_timeline_mean_one_thing():
    """No database: hollow is an in-home visit without a photo, nothing else — a phone call (no photo, as
    always) is a filled diamond, not a hollow point like a missing photo."""
    import datetime as dt

    import pandas as pd

    from ui import charts

    visits = pd.DataFrame({
        "visit_id": ["V1", "V2", "V3", "V4"], "household_id": ["H1", "H1", "H2", "H2"],
        "head_name": ["甲", "甲", "乙", "乙"], "mode": ["入户走访", "入户走访", "电话", "微信"],
        "photo_uploaded": [True, False, False, None],
        "visit_date": [dt.date(2026, 1, 5), dt.date(2026, 3, 5), dt.date(2026, 4, 1), dt.date(2026, 5, 1)]})
    fig = charts.visit_timeline(visits)
    symbols = {tr.name: list(tr.marker.symbol) for tr in fig.data}
    home = next(v for k, v in symbols.items() if k.startswith("入户走访"))
    assert home == ["circle", "circle-open"]
    others = [s for k, v in symbols.items() if not k.startswith("入户走访") for s in v]
    assert len(others) == 2 and not any(s.endswith("-open") for s in others), symbols


def test_one_base_for_grade_shares_on_both_databases(engine, tmp_path):
    """Data level, SQLite and PostgreSQL: on the page ledger's 2025 ratings (some helpers missing a rating),
    every group's bars in the grade chart are its grades over its rated helpers — data_access.shares, the
    tiles' definition — and the missing share is over the helpers due a rating."""
    import pandas as pd

    from data_access import shares
    from data_access.ledger import import_ledger
    from ui import charts

    from .conftest import write_ledger
    from .pages_ledger import tables

    import_ledger(engine, write_ledger(tmp_path / "ledger", tables()))
    for by in ("province", "city", "unit"):
        df = m.ratings(engine, 2025, by, ALL)
        assert df["missing"].sum() > 0
        fig = charts.grade_shares(df, "t")
        bars = {tr.name: dict(zip(tr.y, tr.x)) for tr in fig.data if tr.type == "bar"}
        for _, r in df.iterrows():
            want = shares.rating_shares(r)
            if not shares.rated(r):
                continue
            for g in ("excellent", "qualified", "unqualified"):
                assert abs(bars[theme.GRADE_LABELS[g]][r["name"]] - want[g]) < 1e-9, (by, r["name"], g)
    tot = m.total_row(m.ratings(engine, 2025, "province", ALL), "ratings")
    rated = tot["excellent"] + tot["qualified"] + tot["unqualified"]
    assert shares.rating_shares(tot)["excellent"] == tot["excellent"] / rated
    assert shares.rating_shares(tot)["missing"] == tot["missing"] / (rated + tot["missing"])
    assert pd.isna(shares.rating_shares({"excellent": 0, "qualified": 0, "unqualified": 0, "missing": 0})["excellent"])
