"""One clock: today() is the Beijing date, whatever the server's time zone; nothing else asks the OS."""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from data_access import settings

ROOT = Path(__file__).resolve().parent.parent


def test_today_is_beijing_date_of_the_instant():
    # 23:30 UTC on 29 November is 07:30 on 30 November in Beijing: the office's morning
    assert settings.today(dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.timezone.utc)) == dt.date(2026, 11, 30)
    assert settings.today(dt.datetime(2026, 11, 29, 15, 59)) == dt.date(2026, 11, 29)  # naive = UTC
    assert settings.today(dt.datetime(2026, 11, 29, 16, 0)) == dt.date(2026, 11, 30)


def test_today_ignores_the_server_time_zone():
    code = "from data_access import settings; print(settings.today().isoformat())"
    out = set()
    for tz in ("UTC", "America/Los_Angeles", "Asia/Shanghai", "Pacific/Kiritimati"):
        env = dict(os.environ, TZ=tz)
        env.pop("BANGFU_TODAY", None)
        out.add(subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip())
    assert len(out) == 1  # the same Beijing date in every zone (unless the run straddles midnight)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            owner = f.value.attr if isinstance(f.value, ast.Attribute) else getattr(f.value, "id", None)
            if f.attr == "today" and owner in ("date", "datetime"):
                yield node
            if f.attr == "now" and owner == "datetime" and not node.args and not node.keywords:
                yield node  # a naive local now()


def test_no_code_reads_the_local_clock():
    offenders = []
    for folder in ("data_access", "ui", "pages", "app.py", "benchmarks"):
        paths = [ROOT / folder] if folder.endswith(".py") else sorted((ROOT / folder).rglob("*.py"))
        for p in paths:
            for node in _calls(ast.parse(p.read_text(encoding="utf-8"))):
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use data_access.settings.today()/now(): " + ", ".join(offenders)
