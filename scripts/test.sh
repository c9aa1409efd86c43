#!/usr/bin/env bash
# Install bangfu with its test dependencies into .venv (versions pinned by constraints.txt) and run the whole
# test suite on SQLite and on PostgreSQL (TEST_DATABASE_URL). Extra arguments go to pytest.
# With CI=true (as in .ci/run) a missing browser or Playwright fails the run instead of skipping browser tests.
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

# The browser tests drive Debian's chromium (no browser downloads are possible here), with the CJK fonts the
# pages are drawn in (also the briefings' fonts); poppler-utils reads exported PDFs; Pango lays out the PDF
# briefings (WeasyPrint). apt's output is shown when it fails, not when it works.
missing=()
for pkg in chromium fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_log="$(mktemp)"
    if ! (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}") >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      echo "warning: apt-get could not install ${missing[*]} (output above); browser tests will be skipped, or fail with CI=true" >&2
    fi
    rm -f "$apt_log"
  else
    echo "warning: ${missing[*]} not installed (run as root, or apt-get install -y ${missing[*]}); browser tests will be skipped, or fail with CI=true" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
exec .venv/bin/python -m pytest "$@"
