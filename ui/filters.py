"""The one filter bar: as-of date, rating year, region scope (city → county, deeper by drilling) and
sending unit. The state lives in the URL (st.query_params ``as_of``, ``year``, ``region``, ``unit``,
``helper``) so that a link reproduces the view; bad values give a warning and fall back.

Widgets never own the state: before each widget is drawn its session-state value is set from the URL,
and its on_change callback writes the URL. Clicks on charts and table rows call the same functions
(``drill_to``, ``open_unit``, ``open_helper``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import streamlit as st

from data_access import settings, users
from data_access.scope import Scope
from data_access.schema import LEVEL_RANK
from data_access.views import LEVEL_ZH, child_level

from . import auth, data
from .format import computed_zh, date_zh, md_text

PARAMS = ("as_of", "year", "region", "unit", "helper")
RESTORED = ("as_of", "year", "region", "unit")  # carried over when the user switches pages
MIN_DATE = dt.date(2014, 1, 1)
MIN_YEAR = 2014
DATE_HELP = ("所有指标按该日的状态计算，可回看任一历史日期。输入年、月、日后按回车即应用（点页面别处也会应用），"
             "也可点日历图标选择。")

STATE = "_bf_state"  # the validated state of the last run (callbacks start from it)
SAVED = "_bf_saved"  # the URL parameters to restore after a switch of page
GOTO = "_bf_goto"  # a page to switch to, set by a callback
NOTICE = "_bf_notice"  # a message for the next run, set by a callback

UNITS_PAGE = "pages/units.py"


@dataclass
class Filters:
    url: str
    as_of: dt.date
    year: int
    year_explicit: bool
    region: str | None = None
    unit: str | None = None
    helper: str | None = None
    region_info: dict | None = None
    unit_info: dict | None = None
    warnings: list[str] = field(default_factory=list)
    through: dict | None = None  # the scope region's only, same-named child, which drilling passes through
    effective: Scope | None = None  # the user's scope ∩ the requested one (NOTHING when not allowed)
    allowed: bool = True

    @property
    def scope(self) -> Scope:
        """The scope every data call uses: the effective scope (see read_state)."""
        return self.effective if self.effective is not None else Scope(region=self.region, unit=self.unit)

    @property
    def level(self) -> str:
        """The scope region's level ('province' for the whole province)."""
        return self.region_info["level"] if self.region_info else "province"

    @property
    def child(self) -> str | None:
        """The drill level below the scope region (None below villages). For a region whose only child
        has the same name (定州市 139001 → 定州市 130682, 辛集市 139002 → 130181) the level below that
        child: one row repeating the region's name would tell nothing. The scope stays the region
        itself (its own 市直 units included)."""
        return child_level(self.through["level"] if self.through else self.level)

    @property
    def region_name(self) -> str:
        if self.region_info:
            return self.region_info["name"]
        prov = province(self.url)
        return prov["name"] if prov else "全省"

    @property
    def unit_name(self) -> str | None:
        return self.unit_info["name"] if self.unit_info else None

    def state(self) -> dict:
        return {"as_of": self.as_of, "year": self.year if self.year_explicit else None, "region": self.region,
                "unit": self.unit, "helper": self.helper}


def province(url: str) -> dict | None:
    df = data.list_regions(url, level="province")
    return df.iloc[0].to_dict() if len(df) else None


def today() -> dt.date:
    return settings.today()


def same_name_child(url: str, code: str | None) -> dict | None:
    """The only child (code, name, level) of region `code` when it bears the region's name, else None:
    the city-level 定州市 and 辛集市 each hold one county-level city of the same name."""
    if not code:
        return None
    info = data.region_info(url, code)
    kids = data.list_regions(url, parent_code=code)
    if info is None or len(kids) != 1 or kids.iloc[0]["name"] != info["name"]:
        return None
    return kids.iloc[0].to_dict()


def _up(url: str, info: dict) -> str | None:
    """The region one level up from `info`, skipping a same-named parent that is its parent's only child."""
    parent = info.get("parent_code")
    pinfo = data.region_info(url, parent) if parent else None
    if pinfo and pinfo.get("parent_code") and same_name_child(url, pinfo["parent_code"]):
        return pinfo["parent_code"]
    return parent


def _path_names(path: list[dict]) -> list[str]:
    """Names along a region path, a name repeated by the next level (定州市 › 定州市) shown once."""
    out: list[str] = []
    for p in path:
        if not out or out[-1] != p["name"]:
            out.append(p["name"])
    return out


# ------------------------------------------------------------------------------------------- reading


def _param(name: str) -> str | None:
    val = st.query_params.get(name)
    if val is None:
        return None
    val = str(val).strip()
    return val or None


def read_state(url: str, show_warnings: bool = True) -> Filters:
    """The validated state from the URL. Bad values are removed from the URL, named in a warning
    and replaced by the default."""
    qp = st.query_params
    saved = st.session_state.get(SAVED)
    if saved and not any(k in qp for k in RESTORED):
        for k, val in saved.items():
            qp[k] = val
    warnings: list[str] = []
    t = today()

    as_of = t
    raw = _param("as_of")
    if raw:
        try:
            d = dt.date.fromisoformat(raw)
        except ValueError:
            warnings.append(f"链接中的日期 as_of={raw} 无效（应为 YYYY-MM-DD），已改为今天（{t.isoformat()}）。")
            del qp["as_of"]
        else:
            if d > t:
                warnings.append(f"链接中的日期 {raw} 晚于今天，已改为今天（{t.isoformat()}）。")
                del qp["as_of"]
            elif d < MIN_DATE:
                warnings.append(f"链接中的日期 {raw} 早于 {MIN_DATE.isoformat()}，已改为今天（{t.isoformat()}）。")
                del qp["as_of"]
            else:
                as_of = d

    year, year_explicit = as_of.year - 1, False
    raw = _param("year")
    if raw:
        try:
            y = int(raw)
            if not MIN_YEAR <= y <= as_of.year:
                raise ValueError
        except ValueError:
            warnings.append(f"链接中的考核年度 year={raw} 无效，已改为 {year} 年度。")
            del qp["year"]
        else:
            year, year_explicit = y, y != as_of.year - 1

    region, rinfo = None, None
    raw = _param("region")
    if raw:
        rinfo = data.region_info(url, raw)
        if rinfo is None:
            warnings.append(f"未找到区划代码 {raw}，已显示全省。")
            del qp["region"]
        elif rinfo["level"] == "province":
            rinfo = None  # the province is the default scope
        else:
            region = rinfo["code"]

    unit, uinfo = None, None
    raw = _param("unit")
    if raw:
        uinfo = data.unit_info(url, raw)
        if uinfo is None:
            warnings.append(f"未找到派出单位 {raw}，已显示全部单位。")
            del qp["unit"]
        else:
            unit = uinfo["unit_id"]

    # the one place where the requested scope meets the user's: every page's data calls use f.scope
    user = auth.current_user()
    user_scope = user.scope if user is not None else users.NOTHING
    effective, allowed = data.effective_scope(url, user_scope, Scope(region=region, unit=unit))
    if not allowed:
        auth.record_denied(Scope(region=region, unit=unit))  # audited once per such request
        # draw the bar for the user's own scope; f.scope matches nothing and the page stops (filter_bar)
        region = user.region_code if user is not None and user.role in ("city", "county") else None
        unit = user.unit_id if user is not None and user.role == "unit" else None
    elif (effective.region, effective.unit) != (region, unit):
        if ("region" in qp and effective.region != region) or ("unit" in qp and effective.unit != unit):
            warnings.append("链接中的范围超出您的权限，已改为您有权查看的范围。")
            for k, val in (("region", effective.region), ("unit", effective.unit)):
                if k in qp and val:
                    qp[k] = val
                elif k in qp:
                    del qp[k]
        region, unit = effective.region, effective.unit
    if region != (rinfo or {}).get("code"):
        rinfo = data.region_info(url, region) if region else None
        rinfo = None if rinfo and rinfo["level"] == "province" else rinfo
    if unit != (uinfo or {}).get("unit_id"):
        uinfo = data.unit_info(url, unit) if unit else None

    helper = None
    raw = _param("helper")
    if raw and allowed:
        if not data.helper_visible(url, raw, effective):
            warnings.append(f"未找到帮扶责任人 {raw}，或您无权查看该责任人。")
            del qp["helper"]
        else:
            helper = raw

    f = Filters(url=url, as_of=as_of, year=year, year_explicit=year_explicit, region=region, unit=unit,
                helper=helper, region_info=rinfo, unit_info=uinfo, warnings=warnings,
                through=same_name_child(url, region), effective=effective, allowed=allowed)
    st.session_state[STATE] = f.state()
    present = {k: str(qp[k]) for k in RESTORED if k in qp}
    if present:
        st.session_state[SAVED] = present
    if show_warnings:  # the messages quote the URL and ledger names: shown as text (f.warnings stay plain)
        for w in warnings:
            st.warning(md_text(w), icon=":material/warning:")
        notice = st.session_state.pop(NOTICE, None)
        if notice:
            st.info(md_text(notice), icon=":material/info:")
    return f


# ------------------------------------------------------------------------------------------- writing


def _default_state() -> dict:
    return {"as_of": today(), "year": None, "region": None, "unit": None, "helper": None}


def _commit(state: dict) -> None:
    """Write the state into the URL (and remember it for a switch of page)."""
    as_of = state.get("as_of") or today()
    year = state.get("year")
    if year is not None and year == as_of.year - 1:
        year = None
    vals = {"as_of": as_of.isoformat(), "year": str(year) if year else None, "region": state.get("region"),
            "unit": state.get("unit"), "helper": state.get("helper")}
    qp = st.query_params
    for k, val in vals.items():
        if val:
            qp[k] = val
        elif k in qp:
            del qp[k]
    st.session_state[SAVED] = {k: vals[k] for k in RESTORED if vals[k]}
    st.session_state[STATE] = {**state, "as_of": as_of, "year": year}


def update(**changes) -> None:
    """Change part of the state (callback-safe)."""
    state = dict(st.session_state.get(STATE) or _default_state())
    state.update(changes)
    _commit(state)


def set_region(code: str | None) -> None:
    """Make `code` the scope region (None: the whole province)."""
    update(region=code or None, helper=None)


def drill_to(code: str | None) -> None:
    """Drill into a region below the current scope (a clicked bar or table row)."""
    if not code:
        return
    url = data.db_url()
    info = data.region_info(url, code)
    if info is None:
        return
    cur = (st.session_state.get(STATE) or {}).get("region")
    cur_info = data.region_info(url, cur) if cur else None
    cur_rank = LEVEL_RANK[cur_info["level"]] if cur_info else LEVEL_RANK["province"]
    if LEVEL_RANK[info["level"]] <= cur_rank:
        # a summary row such as 省直 / 某某市直 (units above the level) is not a place to drill into
        st.session_state[NOTICE] = (f"「{info['name']}」这一行汇总的是上级（省直、市直）派出单位，不能再按区划下钻；"
                                    "可到“单位/责任人”页查看各单位。")
        return
    set_region(info["code"])


def open_unit(unit_id: str | None) -> None:
    """Show one sending unit's page."""
    update(unit=unit_id, helper=None)
    st.session_state[GOTO] = UNITS_PAGE


def open_helper(helper_id: str | None) -> None:
    """Show one helper's page."""
    update(helper=helper_id)
    st.session_state[GOTO] = UNITS_PAGE


def reset() -> None:
    _commit(_default_state())


def _on_as_of():
    d = st.session_state.get("f_as_of") or today()
    update(as_of=d)


def _on_year():
    update(year=st.session_state.get("f_year"))


def _on_city():
    update(region=st.session_state.get("f_city") or None, helper=None)


def _on_county():
    update(region=st.session_state.get("f_county") or st.session_state.get("f_city") or None, helper=None)


def _on_unit():
    update(unit=st.session_state.get("f_unit") or None, helper=None)


# ------------------------------------------------------------------------------------------- the screen guard
# Three things Streamlit 1.67 does not do by itself (measured in Chromium, tests/test_date_control_browser.py):
#
# * Its date field (react-aria segments: year, month, day) applies a typed date only when the field loses focus;
#   Enter does nothing, also inside an st.form (Enter does not submit a form from a date field). Here Enter in a
#   date field takes the focus out of it, which applies the date as a click elsewhere would. The calendar picker
#   and pasting a whole date (2025-06-30) work as before.
# * While a rerun computes, the previous run's elements stay on screen ("stale"), fading to 33 % only after
#   0.5 s and over 1 s more, and they stay clickable: old figures stood under the new date, and a download
#   button of the previous run gave the previous date's file (its data and name are those of the run that drew
#   it: ui/widgets.problem_list, ui/report.report_button). Here stale elements of the page fade to 10 % within
#   0.12 s (the figure tiles blurred as well: unreadable) and take no clicks until the run that replaces them has
#   drawn them.
# * Typing a date and then clicking a download button directly (what the user did): the click's
#   mousedown takes the focus out of the field, which applies the date, and the click itself landed on the old
#   button before the new run had even started (nothing was stale yet): the file had the old date. Here, from the
#   moment a changed date leaves its field (Enter, a click elsewhere, Tab) until the run it starts has finished,
#   the page is greyed and takes no clicks (class bf-pending on <html>; dropped after 3 s if no run starts).
#
# A typed date outside min_value..max_value is not applied by the field (it keeps the text, marked red); its own
# message is English and sits in a tooltip, so RANGE_CSS writes a Chinese sentence under the filter bar's field.
# A day the month does not have (2025-02-30) is applied as the month's last day (the caption shows which).

GUARD_CSS = """
[data-testid="stMain"] [data-stale="true"], [data-testid="stPopoverBody"] [data-stale="true"] {
  opacity: .1 !important; pointer-events: none !important; transition: opacity .12s ease-in !important; }
html.bf-pending [data-test-script-state="notRunning"] [data-testid="stMain"] [data-testid="stElementContainer"],
html.bf-pending [data-testid="stMain"] [data-stale="true"],
html.bf-pending [data-testid="stPopoverBody"] [data-stale="true"] {
  opacity: .1 !important; transition: none !important; }
html.bf-pending [data-testid="stMain"], html.bf-pending [data-testid="stPopoverBody"] {
  pointer-events: none !important; }
html.bf-pending [data-test-script-state="notRunning"] [data-testid="stMain"]
  [data-testid="stElementContainer"]:has([data-testid="stMetric"]),
[data-testid="stMain"] [data-stale="true"]:has([data-testid="stMetric"]) { filter: blur(4px); }
html.bf-pending [data-testid="stApp"] { cursor: progress; }
[data-testid="stElementContainer"]:has(.bf-guard) { display: none !important; }
"""

RANGE_CSS = """
[data-testid="stSidebar"] [data-testid="stDateInput"]:has([data-testid="stDateInputField"][data-has-error])::after {
  content: %s; display: block; margin-top: .25rem; color: #C62828; font-size: .875rem; line-height: 1.4; }
"""

GUARD_JS = """
(function () {
  if (window.__bfGuard) return;
  window.__bfGuard = true;
  var FIELD = '[data-testid="stDateInputField"]', root = document.documentElement;
  var before = new WeakMap(), timer = null, sawRun = false;
  function field(el) { return el && el.closest ? el.closest(FIELD) : null; }
  function value(f) {  // the field's date, or null while a segment is empty
    var segs = f.querySelectorAll('[role="spinbutton"]'), out = [];
    for (var i = 0; i < segs.length; i++) {
      if (segs[i].hasAttribute('data-placeholder')) return null;
      out.push(segs[i].getAttribute('aria-valuenow'));
    }
    return out.join('-');
  }
  function pending() {
    root.classList.add('bf-pending');
    sawRun = false;
    clearTimeout(timer);
    timer = setTimeout(function () { if (!sawRun) root.classList.remove('bf-pending'); }, 3000);
  }
  document.addEventListener('focusin', function (e) {
    var f = field(e.target);
    if (f && !before.has(f)) before.set(f, value(f));
  }, true);
  document.addEventListener('focusout', function (e) {
    var f = field(e.target), to = e.relatedTarget;
    // from one segment to the next, or into the field's own calendar: still in the field
    if (!f || (to && (f.contains(to) || (to.closest && to.closest('[data-testid="stDateInputCalendar"]'))))) return;
    var was = before.get(f), now = value(f);
    before.delete(f);
    if (now !== null && was !== undefined && now !== was && !f.hasAttribute('data-has-error')) pending();
  }, true);
  document.addEventListener('keydown', function (e) {
    var f = field(e.target);
    if (e.key !== 'Enter' || e.isComposing || !f) return;
    e.preventDefault();
    e.stopPropagation();
    // the field applies its date when the focus leaves it for the page (with its calendar open, only then:
    // a plain blur() leaves the focus nowhere and the field keeps waiting); a date out of range is not applied,
    // it stays in the field with its message, no longer hidden by the calendar
    var body = document.body, had = body.hasAttribute('tabindex');
    if (!had) body.setAttribute('tabindex', '-1');
    body.focus({preventScroll: true});
    if (!had) body.removeAttribute('tabindex');
    if (field(document.activeElement)) e.target.blur();
  }, true);
  new MutationObserver(function () {
    var app = document.querySelector('[data-testid="stApp"]');
    var state = app && app.getAttribute('data-test-script-state');
    if (state === 'running') sawRun = true;
    else if (state === 'notRunning' && sawRun) {
      sawRun = false;
      clearTimeout(timer);
      root.classList.remove('bf-pending');
    }
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
})();
"""


def screen_guard(first: dt.date | None = None, last: dt.date | None = None) -> None:
    """Enter applies a typed date; stale figures greyed and not clickable while a rerun computes (see above).
    With ``first`` and ``last`` (the filter bar's date range): a Chinese sentence under a typed date outside it.
    Drawn by filter_bar; a page with a date field or downloads but no filter bar calls it itself."""
    css = GUARD_CSS.strip()
    if first and last:
        message = f"日期超出范围：请输入 {first.isoformat()} 至 {last.isoformat()}（今天）之间的日期。"
        css += "\n" + (RANGE_CSS % json.dumps(message, ensure_ascii=False)).strip()
    # no blank line anywhere: it would end an HTML block (tests/test_hostile_text.py checks every st.html)
    st.html(f'<span class="bf-guard"></span><style>{css}</style><script>{GUARD_JS.strip()}</script>',
            unsafe_allow_javascript=True)


# ------------------------------------------------------------------------------------------- the bar


def _select(label: str, options: list, current, key: str, names: dict, on_change, **kw):
    if current not in options:
        options = options + [current]
    st.session_state[key] = current
    return st.selectbox(label, options, key=key, format_func=lambda c: names.get(c, c), on_change=on_change,
                        placeholder="请选择", **kw)


def filter_bar(page: str | None = None) -> Filters:
    """Read the URL state, draw the filter bar in the sidebar and return the filters.
    `page` is this page's path (pages/x.py), so that a pending switch of page to it is skipped."""
    goto = st.session_state.pop(GOTO, None)
    if goto and goto != page:
        st.switch_page(goto, query_params=st.query_params.to_dict())
    url = data.db_url()
    f = read_state(url)
    t = today()
    with st.sidebar:
        screen_guard(MIN_DATE, t)
        st.markdown("#### 筛选条件")
        st.session_state["f_as_of"] = f.as_of
        st.date_input("数据截至日期", key="f_as_of", min_value=MIN_DATE, max_value=t, on_change=_on_as_of,
                      format="YYYY-MM-DD", help=DATE_HELP)
        years = sorted(set(data.rating_years(url)) | {f.as_of.year - 1, f.year}, reverse=True)
        years = [y for y in years if MIN_YEAR <= y <= f.as_of.year]
        _select("考核年度", years, f.year, "f_year", {y: f"{y}年度" for y in years}, _on_year)

        # the select boxes offer only the user's own region and below (a city user: the city fixed; a county
        # user: city and county fixed; a unit user: the unit fixed)
        user = auth.current_user()
        role = user.role if user is not None else None
        own = data.region_info(url, user.region_code) if role in ("city", "county") else None
        info = f.region_info or {}
        cities = data.list_regions(url, level="city")
        city = info.get("city_code") or ""
        if own is not None:
            cities = cities[cities["code"] == own["city_code"]]
            city = own["city_code"]
            names = dict(zip(cities["code"], cities["name"]))
            _select("市", list(cities["code"]), city, "f_city", names, _on_city, disabled=True)
        else:
            names = {"": "全省", **dict(zip(cities["code"], cities["name"]))}
            _select("市", [""] + list(cities["code"]), city, "f_city", names, _on_city)
        county = info.get("county_code") or ""
        if own is not None and own["level"] == "county":
            names = {own["code"]: own["name"]}
            _select("县（市、区）", [own["code"]], own["code"], "f_county", names, _on_county, disabled=True)
        elif city:
            counties = data.list_regions(url, parent_code=city)
            names = {"": "全市", **dict(zip(counties["code"], counties["name"]))}
            _select("县（市、区）", [""] + list(counties["code"]), county, "f_county", names, _on_county)
        else:
            _select("县（市、区）", [""], "", "f_county", {"": "请先选择市"}, _on_county, disabled=True)
        if f.level in ("township", "village"):
            path = data.region_path(url, f.region)
            st.caption("已下钻到：" + " › ".join(md_text(n) for n in _path_names(path[1:])))
            st.button("返回上一级", on_click=set_region, args=(_up(url, f.region_info),), key="f_up")

        if role == "unit":
            uinfo = data.unit_info(url, user.unit_id) or {"unit_id": user.unit_id, "name": user.unit_id}
            _select("派出单位", [uinfo["unit_id"]], uinfo["unit_id"], "f_unit", {uinfo["unit_id"]: uinfo["name"]},
                    _on_unit, disabled=True)
        else:
            units = data.unit_options(url, own["code"] if own is not None else None)
            names = {"": "全部单位", **dict(zip(units["unit_id"], units["name"]))}
            _select("派出单位", [""] + list(units["unit_id"]), f.unit or "", "f_unit", names, _on_unit)
        st.button("重置筛选", on_click=reset, key="f_reset", help="回到您有权查看的全部范围、全部单位、今天。")
    if not f.allowed:
        st.warning(auth.DENIED, icon=":material/block:")
        st.stop()
    auth.record_page_view(page or "?", f.scope)
    return f


def within(requested: Scope) -> Scope:
    """A scope a page asks for itself (e.g. a unit's own page) narrowed to the user's: the effective
    scope, or users.NOTHING when not allowed."""
    user = auth.current_user()
    effective, allowed = data.effective_scope(data.db_url(), user.scope if user else users.NOTHING, requested)
    return effective if allowed else users.NOTHING


def scope_caption(f: Filters) -> None:
    """One line under a page title: which region, unit and date the page shows."""
    path = data.region_path(f.url, f.region) if f.region else []
    where = " › ".join(md_text(n) for n in (_path_names(path) if path else [f.region_name]))
    parts = [f"范围：{where}"]
    if f.unit:
        parts.append(f"派出单位：{md_text(f.unit_name)}")
    parts.append(f"数据截至 {date_zh(f.as_of)}")
    if f.through and f.child:
        parts.append(f"{md_text(f.region_name)}下只有一个同名的{level_label(f.through['level'])}，直接按{level_label(f.child)}显示")
    st.caption(" ｜ ".join(parts))
    freshness_note(f.url, f.as_of)


def freshness_note(url: str, as_of: dt.date) -> str:
    """Say on the page when its figures were computed, or that they are computed live (slow) because the
    date is not stored — shown before the page computes anything. Returns the text."""
    note = computed_zh(data.freshness(url, as_of))
    st.caption(note if data.freshness(url, as_of) else f":material/hourglass_top: {note}")
    return note


def level_label(level: str | None) -> str:
    return LEVEL_ZH.get(level or "", "")
