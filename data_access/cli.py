"""The `bangfu` command (CONTRACT.md): db upgrade, import, metrics, problems, demo, serve; user
management (`bangfu user add|list|disable|enable|passwd`), the audit log (`bangfu audit`) and the
dashboard's read-only PostgreSQL role (`bangfu db grant-readonly ROLE`).

Changes made here (imports, user changes, problem-list and audit exports) are written to the audit log
under the user name "cli".

Exit status: 0 success; 1 bad input, failed import or unreachable database; 2 wrong usage.
Errors are one plain sentence on stderr, never a traceback (set BANGFU_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from sqlalchemy.exc import SQLAlchemyError

from .dates import parse_date
from . import registry, sessions, settings

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(EXIT_USAGE, f"bangfu: 用法错误：{message}（bangfu --help 查看用法）\n")


def _date_arg(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="bangfu", description="帮扶责任人监测看板：数据库、台账导入、指标与问题清单")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    sub.required = True

    def db_opt(sp):
        sp.add_argument("--db", metavar="URL", help="SQLAlchemy 数据库地址（默认 $DATABASE_URL 或内置 SQLite）")

    s = sub.add_parser("db", help="数据库结构")
    dbsub = s.add_subparsers(dest="db_command", parser_class=Parser, metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", help="创建或升级数据库结构")
    db_opt(up)
    gr = dbsub.add_parser("grant-readonly", help="（PostgreSQL）创建或授权看板使用的只读数据库角色")
    gr.add_argument("role", metavar="ROLE")
    gr.add_argument("--password-stdin", action="store_true", help="从标准输入读取该角色的登录密码（一行）")
    db_opt(gr)

    s = sub.add_parser("user", help="看板用户管理")
    usub = s.add_subparsers(dest="user_command", parser_class=Parser, metavar="ACTION")
    usub.required = True
    ua = usub.add_parser("add", help="新增用户")
    ua.add_argument("username", metavar="USERNAME")
    ua.add_argument("--role", required=True, choices=["province", "city", "county", "unit"])
    ua.add_argument("--region", metavar="CODE", help="市级或县级用户的区划代码")
    ua.add_argument("--unit", metavar="ID", help="派出单位用户的单位编号")
    ua.add_argument("--unmask", action="store_true", help="允许查看未脱敏的个人信息（逐次审计）")
    ua.add_argument("--name", metavar="N", help="显示名称")
    ua.add_argument("--email", metavar="E", help="统一身份认证（OIDC）登录时对应的电子邮箱")
    pw = ua.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行）")
    pw.add_argument("--no-password", action="store_true", help="不设密码，只能通过统一身份认证登录（需 --email）")
    db_opt(ua)
    ul = usub.add_parser("list", help="列出用户")
    ul.add_argument("--format", choices=["table", "json"], default="table")
    db_opt(ul)
    for action, text in (("disable", "停用用户"), ("enable", "启用用户（同时解除锁定）")):
        ux = usub.add_parser(action, help=text)
        ux.add_argument("username", metavar="USERNAME")
        db_opt(ux)
    up = usub.add_parser("passwd", help="重设密码（同时解除锁定）")
    up.add_argument("username", metavar="USERNAME")
    up.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行）")
    db_opt(up)

    from .audit import EVENTS

    s = sub.add_parser("audit", help="导出审计日志；bangfu audit verify 校验其哈希链")
    s.add_argument("action", nargs="?", choices=["verify"], metavar="verify",
                   help="校验审计日志的哈希链是否完整（不导出）")
    s.add_argument("--since", type=_date_arg, metavar="YYYY-MM-DD", help="起始日期（含，UTC）")
    s.add_argument("--until", type=_date_arg, metavar="YYYY-MM-DD", help="截止日期（含，UTC）")
    s.add_argument("--user", metavar="U")
    s.add_argument("--event", choices=EVENTS, metavar="E", help="事件：" + "、".join(EVENTS))
    s.add_argument("--format", choices=["csv", "json", "xlsx"], default="csv")
    s.add_argument("--output", metavar="FILE")
    db_opt(s)

    s = sub.add_parser("import", help="导入台账（CSV 文件夹或 .xlsx 工作簿）")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--strict-ids", action="store_true",
                   help="身份证号校验位错误时拒绝导入（默认只警告；也可设 BANGFU_STRICT_IDS=1）")
    db_opt(s)

    s = sub.add_parser("metrics", help="按地区或单位汇总指标")
    s.add_argument("metric", choices=registry.cli_names(),
                   help="；".join(f"{n}：{registry.metric(n).title}" for n in registry.cli_names()))
    s.add_argument("--by", required=True, choices=["province", "city", "county", "unit"])
    s.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD")
    s.add_argument("--year", type=int, metavar="YYYY")
    s.add_argument("--format", choices=["json", "csv", "table"], default="table")
    db_opt(s)

    s = sub.add_parser("problems", help="问题清单")
    s.add_argument("kind", choices=["uncovered", "cap", "overdue", "unapproved"])
    s.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD")
    s.add_argument("--region", metavar="CODE")
    s.add_argument("--unit", metavar="UNIT_ID")
    s.add_argument("--format", choices=["json", "csv", "xlsx"], default="json")
    s.add_argument("--output", metavar="FILE")
    db_opt(s)

    s = sub.add_parser("rectify", help="督办整改：下发督办单、查看整改情况")
    rsub = s.add_subparsers(dest="rectify_command", required=True, metavar="issue|list")
    ri = rsub.add_parser("issue", help="按问题清单向一个派出单位下发督办单")
    ri.add_argument("kind", choices=["overdue", "cap", "uncovered", "unapproved"])
    ri.add_argument("--unit", required=True, metavar="UNIT_ID")
    ri.add_argument("--deadline", required=True, type=_date_arg, metavar="YYYY-MM-DD")
    ri.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD", help="下发日期（默认今天）")
    ri.add_argument("--region", metavar="CODE")
    ri.add_argument("--note", metavar="TEXT")
    db_opt(ri)
    rl = rsub.add_parser("list", help="列出督办事项及其在某日的整改状态")
    rl.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD")
    rl.add_argument("--unit", metavar="UNIT_ID")
    rl.add_argument("--status", choices=["open", "overdue", "rectified"])
    rl.add_argument("--format", choices=["json", "csv", "xlsx"], default="json")
    rl.add_argument("--output", metavar="FILE")
    db_opt(rl)

    s = sub.add_parser("report", help="生成通报（Word、PDF 或 Excel）")
    when = s.add_mutually_exclusive_group()
    when.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD", help="数据截至日期（默认今天）")
    when.add_argument("--month", type=_month_arg, metavar="YYYY-MM", help="该月月末（如 cron 每月初生成上月通报）")
    s.add_argument("--region", metavar="CODE", help="区划代码（默认全省）")
    s.add_argument("--format", required=True, choices=["docx", "pdf", "xlsx"])
    s.add_argument("--output", required=True, metavar="FILE")
    db_opt(s)

    s = sub.add_parser("demo", help="生成演示数据")
    s.add_argument("--households", type=int, default=20000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD", help="演示数据截止日期（默认今天）")
    db_opt(s)

    s = sub.add_parser("refresh", help="重新计算指标汇总表（每次导入时自动进行；建议每日定时运行）")
    s.add_argument("--as-of", type=_date_arg, metavar="YYYY-MM-DD", help="以哪一天为“今天”（默认今天）")
    s.add_argument("--full", action="store_true",
                   help="全部重算（默认只计算今天和缺少的月末；台账只经 bangfu import 改变，导入时已全部重算）")
    db_opt(s)

    s = sub.add_parser("serve", help="启动看板（streamlit run app.py）")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--host", metavar="ADDRESS",
                   help="监听地址（默认 $BANGFU_HOST 或 127.0.0.1，即只接受本机连接；0.0.0.0 表示所有网卡）")
    db_opt(s)
    return p


def _engine(args, require_schema: bool = True):
    from .db import BangfuError, make_engine, safe_url, schema_ready

    engine = make_engine(getattr(args, "db", None))
    if require_schema and not schema_ready(engine):
        raise BangfuError(f"数据库 {safe_url(str(engine.url))} 尚未初始化，请先运行 bangfu db upgrade 或导入台账")
    return engine


def _json_default(o):
    if isinstance(o, (dt.date, dt.datetime)):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(type(o).__name__)


def _records(df) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if v is None:
                clean[k] = None
            elif hasattr(v, "item"):
                clean[k] = v.item()
            elif isinstance(v, float) and v != v:  # NaN
                clean[k] = None
            else:
                clean[k] = v
        out.append(clean)
    return out


def _print_table(rows: list[dict], columns: list[str], out) -> None:
    def fmt(v):
        return "" if v is None else str(v)

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([width(c)] + [width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v + " " * (w - width(v)) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    out.write(line(columns) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def cmd_db_upgrade(args) -> int:
    from .db import make_engine, safe_url, upgrade

    engine = make_engine(args.db)
    upgrade(engine)
    print(f"数据库结构已是最新：{safe_url(str(engine.url))}")
    from sqlalchemy import select

    from .schema import households

    from .summary import ensure_current

    with engine.connect() as conn:
        has_data = conn.execute(select(households.c.household_id).limit(1)).first() is not None
    if has_data:
        # summaries computed by an older version of the rules (or missing for today) are recomputed now,
        # so that pages (stored) and `bangfu metrics` (live) never disagree after an upgrade
        done = ensure_current(engine)
        if done == "rules":
            print("已按当前版本的指标规则重新计算全部汇总")
        elif done == "today":
            print("已计算今天的指标汇总")
        elif done == "busy":
            print("另一进程正在更新指标汇总，完成后即为最新", file=sys.stderr)
    return EXIT_OK


def cmd_import(args) -> int:
    from pathlib import Path

    from .db import make_engine, upgrade
    from .ledger import ImportFailed, import_ledger

    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"台账路径不存在：{path}")
    from . import audit

    engine = make_engine(args.db)
    upgrade(engine)
    try:
        result = import_ledger(engine, path, progress_stream=sys.stderr, strict_ids=True if args.strict_ids else None)
    except ImportFailed as exc:
        audit.record(engine, CLI_ACTOR, audit.IMPORT, object=str(path), outcome=audit.FAILED,
                     detail=f"{len(exc.errors)} 处错误：{exc.errors[0] if exc.errors else ''}")
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"导入失败：共 {len(exc.errors)} 处错误，数据库未做任何修改", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        try:
            audit.record(engine, CLI_ACTOR, audit.IMPORT, object=str(path), outcome=audit.FAILED,
                         detail=f"{exc.__class__.__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the import's own error is the one to report
            pass
        raise
    audit.record(engine, CLI_ACTOR, audit.IMPORT, object=str(path), detail=result.summary())
    for w in result.warnings:
        print(f"警告：{w}", file=sys.stderr)
    print(result.summary())
    return EXIT_OK


def cmd_metrics(args) -> int:
    from . import metrics as m
    from .scope import ALL

    engine = _engine(args)
    as_of = args.as_of or settings.today()
    if args.year is not None and args.metric != "ratings":
        raise UsageError("--year 只适用于 ratings 指标")
    df = m.compute(engine, args.metric, args.by, as_of, ALL, args.year)
    groups = _records(df)
    total = m.total_row(df, args.metric)
    if args.format == "json":
        doc = {"metric": args.metric, "by": args.by, "as_of": as_of.isoformat()}
        if args.metric == "ratings":
            doc["year"] = args.year if args.year is not None else as_of.year - 1
        doc.update({"groups": groups, "total": total})
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=_json_default) + "\n")
    elif args.format == "csv":
        import csv

        cols = ["code", "name", *registry.fields(args.metric)]
        w = csv.DictWriter(sys.stdout, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in groups + [total]:
            w.writerow(r)
    else:
        cols = ["code", "name", *registry.fields(args.metric)]
        _print_table(groups + [total], cols, sys.stdout)
    return EXIT_OK


def cmd_problems(args) -> int:
    from sqlalchemy import select

    from . import schema
    from .scope import Scope
    from .problems import PROBLEMS

    engine = _engine(args)
    with engine.connect() as conn:
        if args.region and conn.execute(select(schema.regions.c.code).where(schema.regions.c.code == args.region)).first() is None:
            raise InputError(f"区划代码 '{args.region}' 不存在")
        if args.unit and conn.execute(select(schema.units.c.unit_id).where(schema.units.c.unit_id == args.unit)).first() is None:
            raise InputError(f"派出单位 '{args.unit}' 不存在")
    as_of = args.as_of or settings.today()
    df = PROBLEMS[args.kind](engine, as_of, Scope(args.region, args.unit))
    data = _frame_bytes(df, args.format, args.output, sheet=args.kind)
    from . import audit

    audit.record_export(engine, CLI_ACTOR, f"problems:{args.kind}", len(df), masked=False,
                        scope=Scope(args.region, args.unit), fmt=args.format)
    _emit(data, args.output, f"{len(df)} 行")
    return EXIT_OK


def _frame_bytes(df, fmt: str, output: str | None, sheet: str) -> bytes:
    """A list as the command line prints it: one JSON array, CSV (with a BOM into a file) or an Excel workbook
    (only into a file, never onto a terminal)."""
    from .export import to_csv_bytes, to_xlsx_bytes

    if fmt == "json":
        return (json.dumps(_records(df), ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")
    if fmt == "csv":
        return to_csv_bytes(df, bom=bool(output))
    if not output and sys.stdout.isatty():
        raise UsageError("xlsx 格式需要 --output FILE")
    return to_xlsx_bytes(df, sheet=sheet)


def _emit(data: bytes, output: str | None, what: str) -> None:
    """Write an export to --output (and say so on stderr) or to stdout."""
    if output:
        with open(output, "wb") as f:
            f.write(data)
        print(f"已写入 {what}到 {output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _month_arg(text: str) -> dt.date:
    """--month YYYY-MM: the last day of that month."""
    from .dates import month_end

    try:
        year, month = (int(x) for x in text.strip().split("-"))
        if len(text.strip()) != 7:
            raise ValueError
        return month_end(year, month)
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"月份 '{text}' 无效，应为 YYYY-MM") from None


def cmd_report(args) -> int:
    """`bangfu report`: the briefing (通报) of the region on the date, written to --output. Personal data in it
    (the named helpers over the cap) is masked: the file is meant to be circulated."""
    from pathlib import Path

    from . import audit, reports
    from .scope import Scope

    out = Path(args.output)
    if not out.parent.exists():
        raise InputError(f"输出目录不存在：{out.parent}")
    if out.is_dir():
        raise InputError(f"--output 应为文件名，而 {out} 是目录")
    engine = _engine(args)
    as_of = args.month or args.as_of or settings.today()
    briefing = reports.build(engine, as_of, args.region)  # an unknown region or a missing font: one sentence
    data = reports.render(briefing, args.format)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)  # never a half-written briefing under the asked name
    audit.record_export(engine, CLI_ACTOR, "report", len(briefing.annex), masked=True,
                        scope=Scope(briefing.region_code if args.region else None), fmt=args.format)
    print(f"已写入通报（{briefing.scope_name}，{briefing.date_line}）到 {out}", file=sys.stderr)
    return EXIT_OK


def cmd_demo(args) -> int:
    from .db import make_engine, safe_url, upgrade
    from .demo import generate

    if args.households < 1:
        raise UsageError("--households 必须是正整数")
    engine = make_engine(args.db)
    upgrade(engine)
    from .summary import refresh_engine

    as_of = args.as_of or settings.today()
    stats = generate(engine, households=args.households, seed=args.seed, as_of=as_of, progress_stream=sys.stderr)
    refresh_engine(engine, today=as_of)
    print(f"演示数据已生成到 {safe_url(str(engine.url))}：" + "，".join(f"{k} {v:,}" for k, v in stats.items()))
    return EXIT_OK


def cmd_refresh(args) -> int:
    import time

    from .summary import refresh_engine

    engine = _engine(args)
    t0 = time.perf_counter()
    stats = refresh_engine(engine, today=args.as_of or settings.today(), only_missing=not args.full)
    kept = f"（保留已有的 {stats['kept']} 个月末）" if stats["kept"] else ""
    years = f"{stats['years']} 个考核年度" if stats["years"] else "考核年度保留已有的"
    print(f"汇总表已更新：{stats['dates']} 个日期{kept}、{years}，共 {stats['rows']:,} 行，"
          f"用时 {time.perf_counter() - t0:.1f} 秒")
    purged = sessions.purge(engine)
    if purged:
        print(f"已删除 {purged} 个结束超过 {sessions.PURGE_AFTER.days} 天的登录会话记录")
    return EXIT_OK


def serve_command(args) -> list[str]:
    """The `streamlit run serve_app.py` command line of `bangfu serve` (app.py as an st.App that warms itself up
    before it answers, serve_app.py): it listens on --host, else $BANGFU_HOST, else 127.0.0.1 (never on every
    interface unless told)."""
    import socket

    from .db import PROJECT_ROOT

    host = (args.host or "").strip() or settings.server_host()
    try:
        socket.getaddrinfo(host, args.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError):
        raise InputError(f"无法监听地址 '{host}'：应为本机的 IP 地址（如 127.0.0.1、0.0.0.0）或主机名") from None
    if not 0 < args.port < 65536:
        raise InputError(f"端口 {args.port} 无效：应为 1–65535")
    return [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "serve_app.py"),
            "--server.address", host, "--server.port", str(args.port)]


def cmd_serve(args) -> int:
    from .db import is_embedded_default, make_engine
    from .demo import ensure_demo

    command = serve_command(args)  # bad --host/--port: one line, before anything is started
    if args.db:
        os.environ["DATABASE_URL"] = args.db
    if is_embedded_default(args.db):
        engine = make_engine(args.db)
        if ensure_demo(engine, progress_stream=sys.stderr):
            print("首次启动：已在内置数据库中生成演示数据", file=sys.stderr)
        engine.dispose()
    os.execvp(command[0], command)
    return EXIT_OK  # pragma: no cover


class InputError(Exception):
    pass


CLI_ACTOR = "cli"


def _read_password(args, confirm: bool = True) -> str:
    """--password-stdin: one line from stdin; otherwise a getpass prompt (twice) on a terminal."""
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InputError("标准输入中没有读到密码")
        return password
    if not sys.stdin.isatty():
        raise UsageError("标准输入不是终端：请用 --password-stdin 从标准输入提供密码")
    import getpass

    password = getpass.getpass("密码：")
    if confirm and getpass.getpass("再次输入密码：") != password:
        raise InputError("两次输入的密码不一致")
    return password


def _user_record(u) -> dict:
    return {k: (v.isoformat(sep=" ", timespec="seconds") if isinstance(v, dt.datetime) else v)
            for k, v in u.as_dict().items()}


def cmd_user(args) -> int:
    from . import users as us

    engine = _engine(args)
    action = args.user_command
    if action == "add":
        if args.no_password and not args.email:
            raise UsageError("--no-password 需要同时提供 --email")
        password = None if args.no_password else _read_password(args)
        u = us.add_user(engine, args.username, password, args.role, region=args.region, unit=args.unit,
                        can_unmask=args.unmask, display_name=args.name, email=args.email, actor=CLI_ACTOR)
        print(f"已新增用户 {u.username}（{us.ROLE_ZH[u.role]}{'，' + (u.region_code or u.unit_id) if (u.region_code or u.unit_id) else ''}"
              f"{'，可查看明文' if u.can_unmask else ''}）")
    elif action == "list":
        rows = [_user_record(u) for u in us.list_users(engine)]
        if args.format == "json":
            sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        else:
            _print_table(rows, ["username", "display_name", "role", "region_code", "unit_id", "can_unmask",
                                "email", "disabled", "locked_until"], sys.stdout)
    elif action == "disable":
        u = us.disable_user(engine, args.username, actor=CLI_ACTOR)
        print(f"已停用用户 {u.username}")
    elif action == "enable":
        u = us.enable_user(engine, args.username, actor=CLI_ACTOR)
        print(f"已启用用户 {u.username}")
    elif action == "passwd":
        if us.get_user(engine, args.username) is None:
            raise InputError(f"用户 '{args.username}' 不存在")
        u = us.set_password(engine, args.username, _read_password(args), actor=CLI_ACTOR)
        print(f"已重设用户 {u.username} 的密码")
    return EXIT_OK


def cmd_audit(args) -> int:
    from . import audit
    from .export import to_csv_bytes, to_xlsx_bytes

    engine = _engine(args)
    if args.action == "verify":
        return cmd_audit_verify(args, engine)
    if args.since and args.until and args.since > args.until:
        raise InputError("--since 晚于 --until")
    df = audit.query(engine, since=args.since, until=args.until, username=args.user, event=args.event,
                     limit=None, newest_first=False)
    if args.format == "json":
        data = (json.dumps(_records(df), ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")
    elif args.format == "csv":
        data = to_csv_bytes(df, bom=bool(args.output))
    else:
        if not args.output and sys.stdout.isatty():
            raise UsageError("xlsx 格式需要 --output FILE")
        data = to_xlsx_bytes(df, titles=audit.TITLES, sheet="审计日志")
    detail = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in
              (("since", args.since), ("until", args.until), ("user", args.user), ("event", args.event)) if v}
    audit.record(engine, CLI_ACTOR, audit.EXPORT, object="audit_log",
                 detail={"rows": len(df), "masked": False, "format": args.format, **detail})
    _emit(data, args.output, f"{len(df)} 条审计记录")
    return EXIT_OK


def cmd_audit_verify(args, engine) -> int:
    """`bangfu audit verify`: exit 0 when the hash chain holds, 1 naming the first broken row."""
    from .audit import verify
    from .db import BangfuError

    given = [o for o, v in (("--since", args.since), ("--until", args.until), ("--user", args.user),
                            ("--event", args.event), ("--output", args.output)) if v]
    if given:
        raise UsageError(f"verify 校验整个审计日志，不接受 {'、'.join(given)}")
    check = verify(engine)
    if not check.ok:
        raise BangfuError(f"审计日志不完整：第一处断裂在 id={check.broken_id} 的记录（{check.problem}）")
    print(f"审计日志完整：{check.rows} 条记录")
    if check.legacy:
        print(f"其中前 {check.legacy} 条写于哈希链启用之前（没有哈希），作为链的起点，无法校验")
    if check.last_hash:
        print(f"最后一条记录 id={check.last_id}，哈希 {check.last_hash}（可另行保存，用于日后发现整条链被重写）")
    return EXIT_OK


def cmd_db(args) -> int:
    if args.db_command == "grant-readonly":
        from .db import make_engine, safe_url
        from .grants import grant_readonly

        engine = make_engine(args.db)
        if engine.dialect.name != "postgresql":
            raise InputError("grant-readonly 只适用于 PostgreSQL：SQLite 数据库没有数据库角色，请用文件权限控制访问")
        password = _read_password(args, confirm=False) if args.password_stdin else None
        created, warnings = grant_readonly(engine, args.role, password=password)
        for w in warnings:
            print(f"警告：{w}", file=sys.stderr)
        print(f"{'已创建' if created else '已更新'}只读角色 {args.role}：{safe_url(str(engine.url))} 上可查询全部表，"
              f"只能经两个受限函数写入审计日志和登录计数，可写会话表；语句时限 15s")
        return EXIT_OK
    return cmd_db_upgrade(args)


def cmd_rectify(args) -> int:
    from . import supervision

    engine = _engine(args)
    if args.rectify_command == "issue":
        try:
            out = supervision.issue(engine, args.kind, args.unit, args.deadline, as_of=args.as_of or settings.today(),
                                    region=args.region, note=args.note, issued_by=CLI_ACTOR)
        except supervision.SupervisionError as exc:
            raise InputError(str(exc)) from None
        print(json.dumps(out, ensure_ascii=False))
        return EXIT_OK
    as_of = args.as_of or settings.today()
    df = supervision.item_status(engine, as_of, unit=args.unit)
    if args.status:
        df = df[df["status"] == args.status].reset_index(drop=True)
    _emit(_frame_bytes(df, args.format, args.output, sheet="rectify"), args.output, f"{len(df)} 行")
    return EXIT_OK


COMMANDS = {
    "rectify": cmd_rectify,
    "import": cmd_import,
    "metrics": cmd_metrics,
    "problems": cmd_problems,
    "report": cmd_report,
    "demo": cmd_demo,
    "refresh": cmd_refresh,
    "serve": cmd_serve,
    "user": cmd_user,
    "audit": cmd_audit,
    "db": cmd_db,
}


def main(argv: list[str] | None = None) -> int:
    from .db import BangfuError, short_error

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"bangfu: 用法错误：{exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BangfuError, InputError, FileNotFoundError, ValueError) as exc:
        print(f"bangfu: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SQLAlchemyError as exc:
        if settings.debug():
            raise
        print(f"bangfu: 数据库错误：{short_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bangfu: 已中断", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if settings.debug():
            raise
        print(f"bangfu: 内部错误：{exc.__class__.__name__}: {exc}（设置 BANGFU_DEBUG=1 查看详情）", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
