"""审计日志: the audit trail (data_access.audit) for province users — filter by date range, user and
event, and download the rows as CSV. In app.py's navigation only for province users; the page checks
the role itself too."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from data_access import audit, export, users
from data_access import settings
from ui import auth, data
from ui.boot import require_app
from ui.filters import screen_guard
from ui.widgets import fail

require_app()  # inside app.py's navigation (see ui/boot.py)

PAGE = "pages/audit.py"
LIMIT = 10000

user = auth.current_user()
st.title("审计日志")
screen_guard()  # Enter applies a typed date range; while the page reruns the old rows and download are greyed
if auth.is_demo_viewer(user):
    st.info("演示模式（免登录）下没有登录用户，不记录也不显示审计日志。创建用户并登录后，省级用户可在此查看。",
            icon=":material/info:")
    st.stop()
if user is None or user.role != "province":
    fail("只有省级用户可以查看审计日志。")

url = data.db_url()
engine = data.engine(url)
st.caption("登录、退出、页面访问、导出、查看明文和用户管理的记录（时间为 UTC）。最多显示最近 10,000 条。")
auth.record_page_view(PAGE, None)

today = settings.today()
c1, c2, c3 = st.columns([2, 1, 1])
days = c1.date_input("日期范围", value=(today - dt.timedelta(days=7), today), max_value=today, key="audit_days",
                     format="YYYY-MM-DD")
names = [u.username for u in users.list_users(engine)]
who = c2.selectbox("用户", [""] + names, format_func=lambda n: n or "全部用户", key="audit_user", placeholder="请选择")
event = c3.selectbox("事件", [""] + list(audit.EVENTS), format_func=lambda e: audit.EVENT_ZH.get(e, "全部事件"),
                     key="audit_event", placeholder="请选择")
since, until = (days[0], days[-1]) if isinstance(days, (tuple, list)) and days else (None, None)

df = audit.query(engine, since=since, until=until, username=who or None, event=event or None, limit=LIMIT)
st.markdown(f"**审计记录**（{len(df):,} 条）")
if df.empty:
    st.info("所选范围内没有审计记录。")
    st.stop()
shown = df.assign(event=df["event"].map(lambda e: audit.EVENT_ZH.get(e, e)),
                  outcome=df["outcome"].map(lambda o: audit.OUTCOME_ZH.get(o, o)))
st.dataframe(shown.rename(columns=audit.TITLES), hide_index=True, key="audit_table")
stem = f"audit_{since or 'all'}_{until or 'all'}"
st.download_button("下载 CSV", data=auth.audited_file(lambda: export.to_csv_bytes(shown, audit.TITLES), "audit_log",
                                                      len(shown), True, None, "csv"),
                   file_name=f"{stem}.csv", mime="text/csv", on_click="ignore",
                   key="audit_csv", icon=":material/download:")
