"""Users, roles, sign-in and the scope intersection (data_access.users, `bangfu user ...`).

Runs on SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys

import pytest
from sqlalchemy import select, text

from data_access import metrics as m
from data_access import rules
from data_access import registry
from data_access import problems as pb
from data_access import schema
from data_access import users as us
from data_access import views
from data_access.cli import main
from data_access.ledger import import_ledger
from data_access.scope import ALL, Scope
from data_access.users import NOTHING, UserError, effective_scope

from .cheap_hash import cheap_hash  # noqa: F401 - a fixture
from .conftest import write_ledger
from .ledgers import V1, V2, V3, base, hh, pr

PW = "correct horse 1"
T0 = dt.datetime(2026, 7, 1, 8, 0, 0)


def run(capsys, monkeypatch, *argv, stdin: str | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def small_ledger():
    return base(
        households=[hh("H1", V1), hh("H2", V2), hh("H3", V3)],
        pairings=[pr("P1", "A", "H1", "2026-01-01"), pr("P2", "F", "H3", "2026-01-01"),
                  pr("P3", "E", "H2", "2026-01-01")],
    )


@pytest.fixture
def small(engine, tmp_path):
    import_ledger(engine, write_ledger(tmp_path / "ledger", small_ledger()), refresh_summaries=False)
    return engine


# ---------------------------------------------------------------------------- the command line


def test_cli_user_lifecycle(small, db_url, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "user", "add", "zhang", "--role", "county", "--region", "130102",
                         "--name", "张三", "--email", "Zhang@Example.CN", "--password-stdin", "--db", db_url,
                         stdin=PW + "\n")
    assert code == 0, err
    assert out.count("\n") == 1 and "zhang" in out
    code, out, err = run(capsys, monkeypatch, "user", "add", "prov", "--role", "province", "--unmask",
                         "--password-stdin", "--db", db_url, stdin=PW + "\n")
    assert code == 0, err
    code, out, err = run(capsys, monkeypatch, "user", "add", "danwei", "--role", "unit", "--unit", "U3",
                         "--password-stdin", "--db", db_url, stdin=PW + "\n")
    assert code == 0, err

    # stored as argon2 hashes; the clear password is nowhere in the database
    with small.connect() as conn:
        hashes = conn.execute(select(schema.users.c.password_hash)).scalars().all()
        everything = [str(v) for t in (schema.users, schema.audit_log) for r in conn.execute(select(t)) for v in r]
    assert len(hashes) == 3 and all(h.startswith("$argon2id$") for h in hashes)
    assert len(set(hashes)) == 3  # salted
    assert not any(PW in v for v in everything)
    if small.dialect.name == "sqlite":
        path = small.url.database
        raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if __import__("os").path.exists(p))
        assert PW.encode() not in raw

    code, out, err = run(capsys, monkeypatch, "user", "list", "--format", "json", "--db", db_url)
    assert code == 0, err
    listed = json.loads(out)
    assert [u["username"] for u in listed] == ["danwei", "prov", "zhang"]
    z = listed[2]
    assert {k: z[k] for k in ("display_name", "role", "region_code", "unit_id", "can_unmask", "email", "disabled")} == {
        "display_name": "张三", "role": "county", "region_code": "130102", "unit_id": None, "can_unmask": False,
        "email": "zhang@example.cn", "disabled": False}
    assert listed[1]["can_unmask"] is True and listed[0]["unit_id"] == "U3"
    assert "password_hash" not in out and "$argon2" not in out

    code, out, err = run(capsys, monkeypatch, "user", "list", "--db", db_url)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["username", "display_name", "role"]
    assert len(out.splitlines()) == 2 + 3

    assert us.authenticate(small, "zhang", PW).ok
    code, out, err = run(capsys, monkeypatch, "user", "disable", "zhang", "--db", db_url)
    assert code == 0 and out.count("\n") == 1, err
    assert us.get_user(small, "zhang").disabled
    assert us.authenticate(small, "zhang", PW).reason == "disabled"
    code, out, err = run(capsys, monkeypatch, "user", "enable", "zhang", "--db", db_url)
    assert code == 0, err
    assert us.authenticate(small, "zhang", PW).ok

    code, out, err = run(capsys, monkeypatch, "user", "passwd", "zhang", "--password-stdin", "--db", db_url,
                         stdin="another-secret\n")
    assert code == 0 and out.count("\n") == 1, err
    assert us.authenticate(small, "zhang", PW).reason == "bad_password"
    assert us.authenticate(small, "zhang", "another-secret").ok


BAD_ADDS = [
    (["zz", "--role", "county", "--region", "130100"], "130100"),        # a city code for a county user
    (["zz", "--role", "city", "--region", "130102"], "130102"),          # a county code for a city user
    (["zz", "--role", "county"], "--region"),                            # county needs a region
    (["zz", "--role", "county", "--region", "139999"], "139999"),        # unknown region
    (["zz", "--role", "unit", "--unit", "UX"], "UX"),                    # unknown unit
    (["zz", "--role", "unit"], "--unit"),
    (["zz", "--role", "unit", "--unit", "U3", "--region", "130102"], "地区"),
    (["zz", "--role", "province", "--region", "130000"], "省级"),
    (["zz", "--role", "county", "--region", "130102", "--unit", "U3"], "派出单位"),
    (["a", "--role", "province"], "用户名"),                              # too short
    (["bad name", "--role", "province"], "用户名"),
    (["zz", "--role", "province", "--email", "not-an-email"], "not-an-email"),
]


@pytest.mark.parametrize("argv,needle", BAD_ADDS)
def test_cli_user_add_bad_input(small, db_url, capsys, monkeypatch, argv, needle):
    code, out, err = run(capsys, monkeypatch, "user", "add", *argv, "--password-stdin", "--db", db_url,
                         stdin=PW + "\n")
    assert code == 1
    assert out == "" and err.count("\n") == 1 and err.startswith("bangfu: ") and needle in err
    assert "Traceback" not in err
    assert us.list_users(small) == []


def test_cli_user_bad_input_and_usage(small, db_url, capsys, monkeypatch):
    ok = ("--password-stdin", "--db", db_url)
    assert run(capsys, monkeypatch, "user", "add", "li", "--role", "province", "--email", "li@x.cn", *ok,
               stdin=PW + "\n")[0] == 0
    for argv, stdin, needle in [
        (["user", "add", "li", "--role", "province", *ok], PW, "已存在"),
        (["user", "add", "li2", "--role", "province", "--email", "LI@x.cn", *ok], PW, "li@x.cn"),
        (["user", "add", "li3", "--role", "province", *ok], "short\n", "8"),
        (["user", "add", "li3", "--role", "province", *ok], "\n", "密码"),
        (["user", "passwd", "nobody", *ok], PW, "nobody"),
        (["user", "passwd", "li", *ok], "short\n", "8"),
        (["user", "disable", "nobody", "--db", db_url], None, "nobody"),
        (["user", "enable", "nobody", "--db", db_url], None, "nobody"),
    ]:
        code, out, err = run(capsys, monkeypatch, *argv, stdin=stdin)
        assert code == 1, (argv, err)
        assert err.count("\n") == 1 and err.startswith("bangfu: ") and needle in err, (argv, err)
    # usage: exit 2, one line
    for argv in (["user", "add", "x1", "--db", db_url],                        # --role missing
                 ["user", "add", "x1", "--role", "king", "--db", db_url],
                 ["user", "add", "x1", "--role", "province", "--no-password", "--db", db_url],  # needs --email
                 ["user", "frobnicate", "--db", db_url]):
        code, out, err = run(capsys, monkeypatch, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
    # no --password-stdin and stdin is not a terminal
    code, out, err = run(capsys, monkeypatch, "user", "add", "x1", "--role", "province", "--db", db_url,
                         stdin="whatever-password\n")
    assert code == 2 and "--password-stdin" in err and err.count("\n") == 1


def test_cli_prompts_twice_on_a_terminal(small, db_url, capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    answers = iter([PW, PW + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, out, err = run(capsys, monkeypatch, "user", "add", "tty", "--role", "province", "--db", db_url)
    assert code == 1 and "不一致" in err
    answers = iter([PW, PW])
    code, out, err = run(capsys, monkeypatch, "user", "add", "tty", "--role", "province", "--db", db_url)
    assert code == 0, err
    assert us.authenticate(small, "tty", PW).ok


def test_oidc_only_user(small, db_url, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "user", "add", "oidc", "--role", "city", "--region", "130100",
                         "--email", "Wang@Example.cn", "--no-password", "--db", db_url)
    assert code == 0, err
    u = us.user_by_email(small, " wang@EXAMPLE.cn ")
    assert u.username == "oidc" and not u.has_password
    assert us.authenticate(small, "oidc", "anything-at-all").reason == "no_password"
    r = us.login_oidc(small, "WANG@example.cn")
    assert r.ok and r.user.username == "oidc" and r.reason == "ok"
    assert us.login_oidc(small, "nobody@example.cn").reason == "unknown_email"
    us.disable_user(small, "oidc")
    assert us.login_oidc(small, "wang@example.cn").reason == "disabled"
    with pytest.raises(UserError):
        us.add_user(small, "oidc2", None, "province")  # no password needs an e-mail


# ---------------------------------------------------------------------------- sign-in


def _fail(engine, name, client, at, password="wrong-password"):
    return us.authenticate(engine, name, password, now=at, client=client)


def _answer(r: us.AuthResult):
    """What the person at the login form learns: one answer for every kind of wrong name or password, one
    for every kind of block (with its end)."""
    if r.ok:
        return ("ok",)
    if r.reason in ("unknown_user", "bad_password", "no_password"):
        return ("wrong",)
    if r.reason in ("locked", "throttled"):
        return ("blocked", r.locked_until)
    return (r.reason,)


def test_client_throttle_account_lock_and_expiry(small, cheap_hash):
    us.add_user(small, "zhang", PW, "county", region="130102")
    r = us.authenticate(small, "zhang", PW, now=T0, client="ip:10.0.0.1")
    assert r.ok and r.reason == "ok" and r.user.username == "zhang" and r.user.scope == Scope(region="130102")
    # one client: blocked at its 10th failure, for 15 minutes
    for i in range(1, us.CLIENT_THRESHOLD):
        r = _fail(small, "zhang", "ip:10.0.0.1", T0 + dt.timedelta(seconds=i))
        assert (r.ok, r.user, r.reason, r.locked_until) == (False, None, "bad_password", None)
        assert us.get_user(small, "zhang").failed_attempts == i
    t10 = T0 + dt.timedelta(seconds=us.CLIENT_THRESHOLD)
    r = _fail(small, "zhang", "ip:10.0.0.1", t10)
    assert (r.ok, r.reason, r.locked_until) == (False, "throttled", t10 + us.LOCKOUT_DURATION)
    # the blocked client gets nowhere, even with the right password, and the block is not extended ...
    r = us.authenticate(small, "zhang", PW, now=t10 + dt.timedelta(minutes=5), client="ip:10.0.0.1")
    assert (r.ok, r.reason, r.locked_until) == (False, "throttled", t10 + us.LOCKOUT_DURATION)
    # ... while the user signs in from another client (the account is not locked)
    assert us.get_user(small, "zhang").locked_until is None
    r = us.authenticate(small, "zhang", PW, now=t10 + dt.timedelta(minutes=5), client="ip:10.0.0.2")
    assert r.ok
    assert us.get_user(small, "zhang").failed_attempts == 0
    # after the block the first client may try again
    r = us.authenticate(small, "zhang", PW, now=t10 + dt.timedelta(minutes=16), client="ip:10.0.0.1")
    assert r.ok

    # many clients together lock the name, for everybody, at the 20th failure
    t1 = T0 + dt.timedelta(hours=1)
    for i in range(us.ACCOUNT_THRESHOLD - 1):
        r = _fail(small, "zhang", f"ip:10.1.0.{i % 4}", t1 + dt.timedelta(seconds=i))
        assert r.reason == "bad_password"
    t20 = t1 + dt.timedelta(seconds=us.ACCOUNT_THRESHOLD)
    r = _fail(small, "zhang", "ip:10.1.0.9", t20)
    assert (r.ok, r.reason, r.locked_until) == (False, "locked", t20 + us.LOCKOUT_DURATION)
    u = us.get_user(small, "zhang")
    assert (u.failed_attempts, u.locked_until) == (us.ACCOUNT_THRESHOLD, t20 + us.LOCKOUT_DURATION)
    r = us.authenticate(small, "zhang", PW, now=t20 + dt.timedelta(minutes=10), client="ip:10.2.0.1")
    assert (r.ok, r.reason, r.locked_until) == (False, "locked", t20 + us.LOCKOUT_DURATION)
    assert us.get_user(small, "zhang").locked_until == t20 + us.LOCKOUT_DURATION
    # after 15 minutes a wrong password starts a fresh count
    r = _fail(small, "zhang", "ip:10.2.0.1", t20 + dt.timedelta(minutes=16))
    assert r.reason == "bad_password"
    assert us.get_user(small, "zhang").failed_attempts == 1
    r = us.authenticate(small, "zhang", PW, now=t20 + dt.timedelta(minutes=17), client="ip:10.2.0.1")
    assert r.ok
    u = us.get_user(small, "zhang")
    assert u.failed_attempts == 0 and u.locked_until is None


def test_one_client_cannot_lock_out_a_user(small, cheap_hash):
    """The worst a single client can do, again and again: a failure on another name opens its window, 8
    failures on the victim just before that window ends, 10 more right after (then it is blocked) — the
    victim's count never reaches the account threshold, and the victim signs in from elsewhere."""
    us.add_user(small, "zhang", PW, "county", region="130102")
    attacker, t = "ip:192.0.2.66", T0
    for cycle in range(3):
        assert _fail(small, "someone-else", attacker, t).reason == "unknown_user"
        edge = t + us.THROTTLE_WINDOW - dt.timedelta(seconds=10)
        for i in range(us.CLIENT_THRESHOLD - 2):
            assert _fail(small, "zhang", attacker, edge + dt.timedelta(seconds=i / 10)).reason == "bad_password"
        after = t + us.THROTTLE_WINDOW + dt.timedelta(seconds=1)
        answers = [_fail(small, "zhang", attacker, after + dt.timedelta(seconds=i / 10)).reason
                   for i in range(us.CLIENT_THRESHOLD + 3)]
        assert answers == ["bad_password"] * (us.CLIENT_THRESHOLD - 1) + ["throttled"] * 4, (cycle, answers)
        u = us.get_user(small, "zhang")
        assert u.locked_until is None and u.failed_attempts < us.ACCOUNT_THRESHOLD, (cycle, u.failed_attempts)
        r = us.authenticate(small, "zhang", PW, now=after + dt.timedelta(seconds=5), client="ip:198.51.100.7")
        assert r.ok, (cycle, r)
        t = after + us.LOCKOUT_DURATION + dt.timedelta(seconds=5)  # the attacker's block is over: again


def test_unknown_and_existing_names_get_the_same_answers(small, cheap_hash):
    us.add_user(small, "zhang", PW, "county", region="130102")
    seen = {}
    for name in ("zhang", "ghost"):
        answers, t = [], T0 + (dt.timedelta(hours=2) if name == "ghost" else dt.timedelta())
        # from one client: wrong, ..., blocked at the 10th, still blocked
        for i in range(us.CLIENT_THRESHOLD + 2):
            answers.append(_answer(_fail(small, name, f"ip:{name}-1", t + dt.timedelta(seconds=i))))
        # from many clients: the name is locked at its 20th failure, for everybody
        for i in range(us.ACCOUNT_THRESHOLD - us.CLIENT_THRESHOLD + 2):
            answers.append(_answer(_fail(small, name, f"ip:{name}-{2 + i}", t + dt.timedelta(seconds=30 + i))))
        # the answers' times relative to the name's start
        seen[name] = [(a[0], a[1] - t) if len(a) == 2 else a for a in answers]
    assert seen["zhang"] == seen["ghost"]
    assert seen["zhang"].count(("wrong",)) == us.ACCOUNT_THRESHOLD - 2  # the 10th and the 20th failure answer "blocked"
    assert seen["zhang"][us.CLIENT_THRESHOLD - 1] == ("blocked", dt.timedelta(seconds=9) + us.LOCKOUT_DURATION)


def test_unknown_and_existing_names_take_about_as_long(small):
    """Both cost one argon2 verification (a dummy hash for an unknown name), also while blocked."""
    import statistics
    import time

    us.add_user(small, "zhang", PW, "county", region="130102")

    def timed(name, i):
        t0 = time.perf_counter()
        _fail(small, name, f"ip:{name}-{i % 2}", T0 + dt.timedelta(seconds=i))
        return time.perf_counter() - t0

    for name in ("zhang", "ghost"):
        timed(name, 0)  # warm up (the dummy hash is made once)
    known, unknown = [], []
    for i in range(1, 6):  # interleaved, so that the machine's load hits both alike
        known.append(timed("zhang", i))
        unknown.append(timed("ghost", i))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.33 < ratio < 3, (known, unknown)  # without the dummy verification: about 0.01


def test_counter_resets_on_success_and_admin_unlock(small, cheap_hash):
    us.add_user(small, "li", PW, "province")
    for i in range(us.ACCOUNT_THRESHOLD - 1):
        assert _fail(small, "li", f"ip:10.0.0.{i % 3}", T0).reason == "bad_password"
    assert us.authenticate(small, "li", PW, now=T0, client="ip:10.0.1.1").ok
    for i in range(us.ACCOUNT_THRESHOLD - 1):  # not locked: the count was reset
        assert _fail(small, "li", f"ip:10.0.2.{i % 3}", T0).reason == "bad_password"
    assert _fail(small, "li", "ip:10.0.3.1", T0).reason == "locked"
    us.enable_user(small, "li")  # an administrator clears the lock
    assert us.authenticate(small, "li", PW, now=T0, client="ip:10.0.3.1").ok
    for i in range(us.ACCOUNT_THRESHOLD):
        _fail(small, "li", f"ip:10.0.4.{i % 3}", T0)
    assert us.authenticate(small, "li", PW, now=T0, client="ip:10.0.5.1").reason == "locked"
    us.set_password(small, "li", "brand-new-password")
    assert us.authenticate(small, "li", "brand-new-password", now=T0, client="ip:10.0.5.1").ok


def test_throttle_numbers_are_the_migrations(small):
    """bangfu_login_result (PostgreSQL, migration 0009) holds the same numbers as the Python rules."""
    import importlib.util
    from pathlib import Path

    path = Path(us.__file__).parent / "migrations" / "versions" / "0009_audit_login_functions.py"
    spec = importlib.util.spec_from_file_location("m0009", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (mod.CLIENT_THRESHOLD, mod.ACCOUNT_THRESHOLD) == (us.CLIENT_THRESHOLD, us.ACCOUNT_THRESHOLD)
    assert mod.WINDOW == f"{int(us.THROTTLE_WINDOW.total_seconds() // 60)} minutes"
    assert mod.BLOCK == f"{int(us.LOCKOUT_DURATION.total_seconds() // 60)} minutes"
    from data_access import audit

    assert set(mod.OWNER_EVENTS) == set(audit.OWNER_EVENTS)
    # and 2 × client threshold − 1 failures of one client fit in a window: below the account threshold
    assert 2 * us.CLIENT_THRESHOLD - 1 < us.ACCOUNT_THRESHOLD and us.THROTTLE_WINDOW <= us.LOCKOUT_DURATION


def test_unknown_and_disabled_users(small):
    assert us.authenticate(small, "ghost", PW) == us.AuthResult(False, None, "unknown_user")
    assert us.authenticate(small, "", "") .reason == "unknown_user"
    assert us.authenticate(small, "x" * 500, PW).reason == "unknown_user"
    us.add_user(small, "wang", PW, "unit", unit="U4")
    us.disable_user(small, "wang")
    assert us.authenticate(small, "wang", PW).reason == "disabled"
    assert us.authenticate(small, "wang", "wrong-password").reason == "bad_password"
    assert us.user_scope(us.get_user(small, "wang")) == NOTHING


def test_idle_timeout():
    assert not us.idle_expired(T0, now=T0 + dt.timedelta(minutes=29))
    assert us.idle_expired(T0, now=T0 + dt.timedelta(minutes=31))
    assert us.idle_expired(None)
    assert us.idle_expired(T0, now=T0 + dt.timedelta(minutes=6), timeout=dt.timedelta(minutes=5))


def test_unmask_needs_the_permission(small):
    a = us.add_user(small, "a1", PW, "province", can_unmask=True)
    b = us.add_user(small, "b1", PW, "province")
    assert us.request_unmask(small, a, "overdue", Scope(region="130102")) is True
    assert us.request_unmask(small, b, "overdue") is False
    df = pb.uncovered(small, dt.date(2026, 6, 30), detail=True, unmasked=us.may_unmask(b))
    assert all(name.endswith("**") for name in df["head_name"])


# ---------------------------------------------------------------------------- scope intersection


def eff(engine, user_scope, requested):
    return tuple(effective_scope(engine, user_scope, requested))


def test_effective_scope_county_user(small):
    county = Scope(region="130102")
    assert eff(small, county, ALL) == (county, True)
    assert eff(small, county, None) == (county, True)
    assert eff(small, county, Scope(region="130102")) == (county, True)
    # a village under the own county: allowed, narrowed to the village
    assert eff(small, county, Scope(region=V1)) == (Scope(region=V1), True)
    assert eff(small, county, Scope(region="130102001")) == (Scope(region="130102001"), True)
    # the own city or the province: narrowed to the county
    assert eff(small, county, Scope(region="130100")) == (county, True)
    assert eff(small, county, Scope(region="130000")) == (county, True)
    # another county, a village of another county, an unknown code: nothing
    assert eff(small, county, Scope(region="130202")) == (NOTHING, False)
    assert eff(small, county, Scope(region=V3)) == (NOTHING, False)
    assert eff(small, county, Scope(region="139999")) == (NOTHING, False)
    assert eff(small, county, Scope(region="130200")) == (NOTHING, False)  # another city
    # units: only those seated under the county
    assert eff(small, county, Scope(unit="U3")) == (Scope(region="130102", unit="U3"), True)
    assert eff(small, county, Scope(region=V1, unit="U3")) == (Scope(region=V1, unit="U3"), True)
    assert eff(small, county, Scope(unit="U1")) == (NOTHING, False)  # a province-level unit
    assert eff(small, county, Scope(unit="U2")) == (NOTHING, False)  # a city-level unit
    assert eff(small, county, Scope(unit="U4")) == (NOTHING, False)  # another county's unit
    assert eff(small, county, Scope(unit="UX")) == (NOTHING, False)
    assert eff(small, county, Scope(region=V3, unit="U3")) == (NOTHING, False)


def test_effective_scope_city_unit_and_province_users(small):
    city = Scope(region="130100")
    assert eff(small, city, ALL) == (city, True)
    assert eff(small, city, Scope(region="130102")) == (Scope(region="130102"), True)
    assert eff(small, city, Scope(unit="U2")) == (Scope(region="130100", unit="U2"), True)
    assert eff(small, city, Scope(unit="U3")) == (Scope(region="130100", unit="U3"), True)
    assert eff(small, city, Scope(unit="U1")) == (NOTHING, False)
    assert eff(small, city, Scope(region="130202")) == (NOTHING, False)

    unit = Scope(unit="U3")
    assert eff(small, unit, ALL) == (unit, True)
    assert eff(small, unit, Scope(unit="U3")) == (unit, True)
    assert eff(small, unit, Scope(unit="U4")) == (NOTHING, False)
    assert eff(small, unit, Scope(region="130202")) == (Scope(region="130202", unit="U3"), True)
    assert eff(small, unit, Scope(region="139999")) == (NOTHING, False)

    assert eff(small, ALL, ALL) == (ALL, True)
    assert eff(small, ALL, Scope(region="130202", unit="U1")) == (Scope(region="130202", unit="U1"), True)
    assert eff(small, ALL, Scope(region="139999")) == (NOTHING, False)
    assert eff(small, ALL, Scope(unit="UX")) == (NOTHING, False)

    # a user whose region or unit has gone from the ledger sees nothing
    assert eff(small, Scope(region="139999"), ALL) == (NOTHING, False)
    assert eff(small, Scope(unit="UX"), ALL) == (NOTHING, False)
    assert eff(small, NOTHING, ALL) == (NOTHING, False)


def test_user_scope_by_role(small):
    assert us.add_user(small, "pp", PW, "province").scope == ALL
    assert us.add_user(small, "cc", PW, "city", region="130100").scope == Scope(region="130100")
    assert us.add_user(small, "xx", PW, "county", region="130202").scope == Scope(region="130202")
    assert us.add_user(small, "uu", PW, "unit", unit="U1").scope == Scope(unit="U1")


def test_helper_drilldown_respects_scope(small):
    d = dt.date(2026, 6, 30)
    county = Scope(region="130102")
    # F (路南区民政局, 130202) pairs H3 in 路南区: not visible to 长安区
    assert views.helper_info(small, "F") is not None
    assert views.helper_info(small, "F", scope=county) is None
    assert views.helper_pairings(small, d, "F", scope=county).empty
    assert views.helper_visits(small, "F", None, d, scope=county).empty
    # E (省财政厅) pairs H2 in 长安区: visible, with that pairing only
    assert views.helper_info(small, "E", scope=county)["helper_id"] == "E"
    assert list(views.helper_pairings(small, d, "E", scope=county)["pairing_id"]) == ["P3"]
    assert views.helper_visible(small, "E", Scope(region="130202")) is False
    # A (长安区 unit): visible to the county, to its unit, not to another unit
    assert views.helper_visible(small, "A", county)
    assert views.helper_visible(small, "A", Scope(unit="U3"))
    assert not views.helper_visible(small, "A", Scope(unit="U4"))
    assert not views.helper_visible(small, "A", NOTHING)
    assert views.helper_info(small, "A", scope=NOTHING) is None


# ---------------------------------------------------------------------------- no leak, on demo data

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def demo(engine):
    from data_access.demo import generate
    from data_access.summary import refresh_engine

    generate(engine, households=1500, seed=2, as_of=AS_OF)
    refresh_engine(engine, today=AS_OF)
    return engine


def _lookups(engine):
    with engine.connect() as conn:
        reg = {r.code: r for r in conn.execute(select(schema.regions))}
        unit_seat = dict(conn.execute(select(schema.units.c.unit_id, schema.units.c.region_code)).all())
        hh_village = dict(conn.execute(select(schema.households.c.household_id, schema.households.c.village_code)).all())
        helper_unit = dict(conn.execute(select(schema.helpers.c.helper_id, schema.helpers.c.unit_id)).all())
    return reg, unit_seat, hh_village, helper_unit


def _busy_county(engine):
    """The county with the most pairings whose helper's unit is seated outside it."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT r.county_code FROM pairings p JOIN households h ON h.household_id = p.household_id "
            "JOIN regions r ON r.code = h.village_code JOIN helpers hp ON hp.helper_id = p.helper_id "
            "JOIN units u ON u.unit_id = hp.unit_id JOIN regions ur ON ur.code = u.region_code "
            "WHERE ur.county_code IS NULL OR ur.county_code <> r.county_code "
            "GROUP BY r.county_code ORDER BY count(*) DESC, r.county_code LIMIT 1")).scalar()


def test_county_user_sees_only_its_county(demo):
    engine = demo
    reg, unit_seat, hh_village, helper_unit = _lookups(engine)
    county = _busy_county(engine)
    assert county
    user = us.add_user(engine, "xian", PW, "county", region=county)
    scope, allowed = effective_scope(engine, us.user_scope(user), ALL)
    assert allowed and scope == Scope(region=county)

    def in_county(region_code):
        return reg[region_code].county_code == county

    def unit_in_county(unit_id):
        return in_county(unit_seat[unit_id])

    ancestors = {county, reg[county].city_code, reg[county].province_code}
    year = AS_OF.year - 1
    day_metrics = {"coverage": m.coverage, "cap": m.cap, "cadence": m.cadence, "replacements": m.replacements}
    unit_based = {"cap", "replacements", "ratings"}
    for summary in (True, False):
        calls = {name: (lambda by, s, f=f: f(engine, AS_OF, by, s, summary=summary)) for name, f in day_metrics.items()}
        calls["ratings"] = lambda by, s: m.ratings(engine, year, by, s, summary=summary)
        calls["photos"] = lambda by, s: m.photos(engine, dt.date(2026, 1, 1), AS_OF, by, s)
        for name, call in calls.items():
            for by in rules.DIMS:
                df = call(by, scope)
                nothing = call(by, NOTHING)
                assert nothing.empty, (name, by)
                codes = list(df["code"])
                if by in ("province", "city"):
                    assert set(codes) <= ancestors, (name, by, summary)
                elif by != "unit":
                    assert all(in_county(c) for c in codes), (name, by, summary)
                elif name in unit_based:
                    assert all(unit_in_county(c) for c in codes), (name, by, summary)
            # the scoped totals are exactly the county's row of the unscoped figures
            fields = registry.fields(name)
            full = call("county", ALL).set_index("code")
            total = m.total_row(call("county", scope), name)
            want = {f: int(full.loc[county, f]) if county in full.index else 0 for f in fields}
            assert {f: total[f] for f in fields} == want, (name, summary)
            assert any(want.values()) or name == "replacements", name

    # the problem lists: exactly the unscoped list's rows under the county
    keep = {
        "uncovered": lambda r: in_county(r["village_code"]),
        "cap": lambda r: unit_in_county(r["unit_id"]),
        "overdue": lambda r: in_county(hh_village[r["household_id"]]),
        "unapproved": lambda r: unit_in_county(helper_unit[r["helper_id"]]),
    }
    for kind, fn in pb.PROBLEMS.items():
        for detail in (False, True):
            first = pb.CONTRACT_FIELDS[kind][0]
            scoped = fn(engine, AS_OF, scope, detail=detail)
            full = fn(engine, AS_OF, ALL, detail=detail)
            want = sorted(r[first] for r in full.to_dict("records") if keep[kind](r))
            assert sorted(scoped[first]) == want, (kind, detail)
            assert fn(engine, AS_OF, NOTHING, detail=detail).empty
    status = pb.overdue(engine, AS_OF, scope, include_all=True)
    assert len(status) and all(in_county(hh_village[h]) for h in status["household_id"])
    assert len(pb.cap_violators(engine, AS_OF, scope, min_load=1))
    assert all(unit_in_county(u) for u in pb.cap_violators(engine, AS_OF, scope, min_load=1)["unit_id"])

    tr = pb.trend(engine, AS_OF, scope, months=3)
    cov = m.coverage(engine, AS_OF, "county", ALL).set_index("code")
    assert int(tr.iloc[-1]["households"]) == int(cov.loc[county, "households"])
    assert pb.trend(engine, AS_OF, NOTHING, months=2)["households"].sum() == 0

    # the views built on the same scope
    for df in (views.unit_helpers(engine, AS_OF, year, scope), views.missing_ratings(engine, year, scope),
               views.excellent_with_problems(engine, year, AS_OF, scope), views.list_units(engine, scope.region)):
        assert all(unit_in_county(u) for u in df["unit_id"])
    for df in (views.unit_helpers(engine, AS_OF, year, NOTHING), views.missing_ratings(engine, year, NOTHING),
               views.excellent_with_problems(engine, year, AS_OF, NOTHING), views.list_units(engine, NOTHING.region)):
        assert df.empty

    # a helper from elsewhere who works in the county: only the county's pairings and visits
    outsider = next(h for h in status["helper_id"] if not unit_in_county(helper_unit[h]))
    pairs = views.helper_pairings(engine, AS_OF, outsider, scope=scope)
    assert len(pairs) and all(in_county(hh_village[h]) for h in pairs["household_id"])
    visits = views.helper_visits(engine, outsider, None, AS_OF, scope=scope)
    assert all(in_county(hh_village[h]) for h in visits["household_id"])
    stranger = next(h for h, u in sorted(helper_unit.items())
                    if not unit_in_county(u) and not views.helper_visible(engine, h, scope))
    assert views.helper_info(engine, stranger, scope=scope) is None
    assert views.helper_pairings(engine, AS_OF, stranger, scope=scope).empty
    assert views.helper_visits(engine, stranger, None, AS_OF, scope=scope).empty

    # another county in the URL: nothing
    other = next(c for c, r in sorted(reg.items()) if r.level == "county" and c != county)
    assert tuple(effective_scope(engine, us.user_scope(user), Scope(region=other))) == (NOTHING, False)
