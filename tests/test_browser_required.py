"""A green CI run has opened a browser: without Chromium or Playwright the browser tests are skipped on a
developer's machine, but in CI (``CI=true``) they fail the run (tests/conftest.py ``require_browser``).

The rule is checked by running pytest in a subprocess on this file's tiny browser test (and on the collection
of a browser test module) with ``BANGFU_CHROMIUM`` pointing to a path that does not exist, or with Playwright
made unimportable, once with ``CI=true`` and once without.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests/test_browser_required.py::test_chromium_renders_a_page"
# Playwright made unimportable in the child (an entry of None in sys.modules makes `import` raise ImportError)
NO_PLAYWRIGHT = "sys.modules['playwright'] = None; sys.modules['playwright.sync_api'] = None; "


@pytest.mark.browser
def test_chromium_renders_a_page(browser):
    page = browser.new_page()
    try:
        page.set_content('<p id="t">帮扶责任人</p>')
        assert page.inner_text("#t") == "帮扶责任人"
    finally:
        page.close()


def _pytest(args: list[str], ci: bool, chromium: str | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BANGFU_CHROMIUM", "PYTEST_ADDOPTS")}
    if ci:
        env["CI"] = "true"
    if chromium is not None:
        env["BANGFU_CHROMIUM"] = chromium
    code = f"import sys; {prelude}import pytest; sys.exit(pytest.main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_missing_chromium_fails_in_ci_and_is_skipped_elsewhere(tmp_path):
    missing = str(tmp_path / "no-chromium")
    args = ["-q", "-p", "no:cacheprovider", "-rs", TINY]
    ci = _pytest(args, ci=True, chromium=missing)
    assert ci.returncode == 1, ci.stdout[-2000:]
    assert "1 error" in ci.stdout and missing in ci.stdout and "CI is set" in ci.stdout, ci.stdout[-2000:]
    dev = _pytest(args, ci=False, chromium=missing)
    assert dev.returncode == 0 and "1 skipped" in dev.stdout and missing in dev.stdout, dev.stdout[-2000:]


def test_missing_playwright_fails_in_ci(tmp_path):
    args = ["-q", "-p", "no:cacheprovider", "-rs", TINY]
    ci = _pytest(args, ci=True, prelude=NO_PLAYWRIGHT)
    assert ci.returncode == 1 and "1 error" in ci.stdout and "playwright is not installed" in ci.stdout, ci.stdout[-2000:]
    dev = _pytest(args, ci=False, prelude=NO_PLAYWRIGHT)
    assert dev.returncode == 0 and "1 skipped" in dev.stdout, dev.stdout[-2000:]


def test_browser_modules_fail_to_collect_in_ci_without_chromium(tmp_path):
    """The module-level check of tests/test_sessions_bench.py (and tests/test_browser.py): in CI the module is
    an error, not silently skipped."""
    missing = str(tmp_path / "no-chromium")
    args = ["-q", "-p", "no:cacheprovider", "-rs", "tests/test_sessions_bench.py"]
    ci = _pytest(args, ci=True, chromium=missing)  # a collection error: nothing of the module runs
    assert ci.returncode == 2 and "1 error" in ci.stdout and "CI is set" in ci.stdout and missing in ci.stdout, \
        ci.stdout[-2000:]
    dev = _pytest(args, ci=False, chromium=missing)  # 5: the module skipped, so no test was collected
    assert dev.returncode == 5 and "1 skipped" in dev.stdout and missing in dev.stdout, dev.stdout[-2000:]
