"""deploy/: the nginx site is accepted by nginx and has what the set-up relies on; the systemd timer fires at
00:05 Beijing time; scripts/stack.sh knows its commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "bangfu.conf"
SYSTEMD = ROOT / "deploy" / "systemd"


def _nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def test_nginx_accepts_the_site(tmp_path):
    nginx = _nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/stack.sh installs it when run as root)")
    site = tmp_path / "bangfu.conf"
    text = SITE.read_text().replace("/var/log/nginx/", f"{tmp_path}/").replace("listen 80;", "listen 127.0.0.1:1;")
    site.write_text(text)
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n  client_body_temp_path {tmp_path}/tmp;\n"
                    f"  proxy_temp_path {tmp_path}/tmp;\n  include {site};\n}}\n")
    res = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_the_site_has_sticky_sessions_websockets_health_and_gzip():
    text = SITE.read_text()
    active = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # without the comments
    assert re.search(r"hash \$bangfu_route consistent;", active)
    assert "bangfu_route=$request_id" in active and "add_header Set-Cookie $bangfu_route_cookie;" in active
    assert re.search(r"location = /_stcore/stream \{[^}]*proxy_read_timeout 1h;", active)
    assert "proxy_set_header Upgrade $http_upgrade;" in active
    assert "proxy_set_header Connection $bangfu_connection;" in active
    assert "proxy_http_version 1.1;" in active and "proxy_set_header Host $http_host;" in active
    assert "location = /_stcore/health" in active
    assert re.search(r"server 127\.0\.0\.1:8501 max_fails=\d+ fail_timeout=\d+s;", active)
    # idle upstream connections closed before uvicorn's 5 s keep-alive: no request on a closing connection
    assert re.search(r"keepalive_timeout [1-4]s;", active)
    assert "gzip on;" in active and "proxy_next_upstream error timeout" in active
    assert "ssl_certificate" in text and "ssl_certificate" not in active  # TLS left to the operator, commented
    assert "health_check" not in active  # an NGINX Plus directive: only mentioned in the comments


def test_the_refresh_timer_fires_at_0005_beijing_time():
    timer = (SYSTEMD / "bangfu-refresh.timer").read_text()
    assert "OnCalendar=*-*-* 00:05:00 Asia/Shanghai" in timer
    assert "ExecStart=/opt/bangfu/.venv/bin/bangfu refresh" in (SYSTEMD / "bangfu-refresh.service").read_text()
    unit = (SYSTEMD / "bangfu@.service").read_text()
    assert "ExecStart=/opt/bangfu/.venv/bin/bangfu serve --port %i" in unit and "BANGFU_HOST=127.0.0.1" in unit
    analyze = shutil.which("systemd-analyze")
    if analyze:
        res = subprocess.run([analyze, "calendar", "*-*-* 00:05:00 Asia/Shanghai"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_stack_script_usage_and_unknown_parts(tmp_path):
    stack = ROOT / "scripts" / "stack.sh"
    res = subprocess.run(["bash", str(stack), "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "BANGFU_STACK_DIR": str(tmp_path / "none")}
    res = subprocess.run(["bash", str(stack), "status"], capture_output=True, text=True, env=env)
    assert res.returncode == 3 and "no stack" in res.stdout
    res = subprocess.run(["bash", str(stack), "stop", "app-9"], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and "no dashboard replica app-9" in res.stderr
