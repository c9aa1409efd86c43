#!/usr/bin/env bash
# Install bangfu with its test dependencies into .venv and run the whole test suite
# on SQLite and on PostgreSQL (TEST_DATABASE_URL). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL: use TEST_DATABASE_URL if given; otherwise the local server (started if it is down).
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
fi

# The browser tests drive Debian's chromium (no browser downloads are possible here).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null 2>&1 \
    || echo "warning: could not install chromium; browser tests will fail" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
