"""Ledger import (台账导入) exactly as CONTRACT.md specifies.

Read → validate everything → write everything in one transaction, or nothing at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import sys
import time
import unicodedata
import warnings as warnings_module
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import and_, select, tuple_
from sqlalchemy.engine import Connection, Engine

from . import schema
from . import settings
from .regions import refresh_ancestors
from .schema import LEVEL_RANK

log = logging.getLogger("bangfu.import")

# --------------------------------------------------------------------------------------------
# Column specifications
# --------------------------------------------------------------------------------------------


def _aliases(mapping: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in mapping.items()}


REGION_LEVEL = _aliases(
    {
        **{v: v for v in schema.LEVELS},
        "省": "province", "省级": "province",
        "市": "city", "市级": "city", "地级市": "city",
        "县": "county", "县级": "county", "县区": "county", "区县": "county",
        "乡": "township", "乡镇": "township", "乡级": "township", "镇": "township",
        "村": "village", "村级": "village", "行政村": "village",
    }
)
UNIT_LEVEL = _aliases(
    {
        **{v: v for v in schema.UNIT_LEVELS},
        "省直": "province", "省": "province", "省级": "province",
        "市直": "city", "市": "city", "市级": "city",
        "县直": "county", "县": "county", "县级": "county",
        "乡镇": "township", "乡": "township", "乡级": "township",
    }
)
STATUS = _aliases(
    {
        **{v: v for v in schema.HOUSEHOLD_STATUSES},
        "未脱贫": "not_lifted", "尚未脱贫": "not_lifted",
        "已脱贫享受政策": "lifted_with_policy", "已脱贫继续享受政策": "lifted_with_policy",
        "已退出": "exited", "退出": "exited",
    }
)
CATEGORY = _aliases(
    {
        **{v: v for v in schema.HELPER_CATEGORIES},
        "干部职工": "cadre", "干部": "cadre",
        "村两委干部": "village_committee", '村"两委"干部': "village_committee",
        "村“两委”干部": "village_committee", "村两委": "village_committee",
        "致富带头人": "rich_leader", "农村致富带头人": "rich_leader",
    }
)
END_REASON = _aliases(
    {
        **{v: v for v in schema.END_REASONS},
        "患病": "illness", "调离": "transfer", "处分": "discipline",
        "户退出": "household_exited", "其他": "other",
    }
)
MODE = _aliases(
    {
        **{v: v for v in schema.VISIT_MODES},
        "入户": "in_home", "入户走访": "in_home", "电话": "phone", "短信": "sms", "微信": "wechat",
    }
)
GRADE = _aliases(
    {**{v: v for v in schema.GRADES}, "优秀": "excellent", "合格": "qualified", "不合格": "unqualified"}
)
BOOL = {"1": True, "0": False, "是": True, "否": False, "true": True, "false": False,
        "yes": True, "no": False, "y": True, "n": False}


@dataclass(frozen=True)
class Col:
    name: str
    chinese: tuple[str, ...]
    required: bool = False
    kind: str = "str"  # str | date | bool | int | year | enum
    enum: dict[str, str] | None = None


def C(name, chinese, required=False, kind="str", enum=None):
    if isinstance(chinese, str):
        chinese = (chinese,)
    return Col(name, tuple(chinese), required, kind, enum)


HELPER_ID = ("帮扶责任人编号", "责任人编号", "帮扶人编号")
HOUSEHOLD_ID = ("户编号", "贫困户编号")
UNIT_ID = ("单位编号", "派出单位编号")

SPECS: dict[str, list[Col]] = {
    "regions": [
        C("code", ("区划代码", "代码"), True),
        C("name", "名称", True),
        C("level", "级别", True, "enum", REGION_LEVEL),
        C("parent_code", "上级代码"),
    ],
    "units": [
        C("unit_id", UNIT_ID, True),
        C("name", ("单位名称", "名称"), True),
        C("level", "级别", True, "enum", UNIT_LEVEL),
        C("region_code", ("所属区划代码", "区划代码"), True),
    ],
    "helpers": [
        C("helper_id", HELPER_ID, True),
        C("name", "姓名", True),
        C("unit_id", UNIT_ID, True),
        C("department", "处室"),
        C("category", "类别", True, "enum", CATEGORY),
        C("position", "职务"),
        C("phone", ("联系电话", "电话")),
    ],
    "households": [
        C("household_id", HOUSEHOLD_ID, True),
        C("head_name", "户主姓名", True),
        C("village_code", ("村代码", "所属村代码"), True),
        C("status", "状态", True, "enum", STATUS),
        C("id_number", ("身份证号", "身份证号码", "户主身份证号")),
        C("size", ("人口数", "家庭人口数"), kind="int"),
    ],
    "pairings": [
        C("pairing_id", "结对编号", True),
        C("helper_id", HELPER_ID, True),
        C("household_id", HOUSEHOLD_ID, True),
        C("start_date", "开始日期", True, "date"),
        C("end_date", "结束日期", kind="date"),
        C("end_reason", "结束原因", kind="enum", enum=END_REASON),
        C("approved", ("县委组织部批准", "是否批准", "批准"), kind="bool"),
    ],
    "visits": [
        C("visit_id", "走访编号", True),
        C("helper_id", HELPER_ID, True),
        C("household_id", HOUSEHOLD_ID, True),
        C("visit_date", "走访日期", True, "date"),
        C("mode", ("方式", "走访方式"), True, "enum", MODE),
        C("photo_uploaded", ("照片上传", "是否上传照片"), kind="bool"),
        C("note", ("记录", "走访记录", "备注")),
    ],
    "ratings": [
        C("helper_id", HELPER_ID, True),
        C("year", ("年度", "年份"), True, "year"),
        C("grade", ("等次", "考核等次"), True, "enum", GRADE),
    ],
    "assignments": [
        C("unit_id", UNIT_ID, True),
        C("village_code", ("村代码", "帮扶村代码"), True),
        C("start_date", "开始日期", True, "date"),
        C("end_date", "结束日期", kind="date"),
    ],
}

KEYS: dict[str, tuple[str, ...]] = {
    "ratings": ("helper_id", "year"),
    "assignments": ("unit_id", "village_code", "start_date"),
}
for _t, _cols in SPECS.items():
    KEYS.setdefault(_t, (_cols[0].name,))

# the order in which tables are validated and written (references point backwards)
TABLE_ORDER = ["regions", "units", "helpers", "households", "pairings", "visits", "ratings", "assignments"]

# human-readable names for each enum, for error messages
ENUM_CHOICES = {
    "level": None,
    "status": "not_lifted/lifted_with_policy/exited 或 未脱贫/已脱贫享受政策/已退出",
    "category": "cadre/village_committee/rich_leader 或 干部职工/村两委干部/致富带头人",
    "end_reason": "illness/transfer/discipline/household_exited/other 或 患病/调离/处分/户退出/其他",
    "mode": "in_home/phone/sms/wechat 或 入户/电话/短信/微信",
    "grade": "excellent/qualified/unqualified 或 优秀/合格/不合格",
}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class ImportFailed(Exception):
    """Validation failed: ``errors`` holds every ``file:line: column: reason`` line."""

    def __init__(self, errors: list[str], validated_by: str | None = None):
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors
        self.validated_by = validated_by  # "sql" or "python" once the rows were validated


@dataclass
class Sheet:
    table: str
    label: str  # how errors name the file
    header: list[Any]
    rows: Iterable[tuple[int, list[Any]]]  # (line number, raw cells): a list, or CsvRows
    header_line: int = 1  # the first non-blank row is the header
    check_width: bool = False  # CSV: a row with more non-empty cells than the header is an error


@dataclass
class ImportResult:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    replaced_demo: bool = False  # the database held generated demo data, which this import removed
    normalised: int = 0  # values whose full-width characters were folded to half-width (NFKC)
    validated_by: str = "python"  # "sql": validated in PostgreSQL after a raw COPY (import_ledger)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (benchmarks/import_bench.py)
    # what the visits written touch: the earliest visit date (inserted or updated, old and new values), and the
    # households of the updated ones (old and new values: a visit may move to another household); when only visits
    # changed, the refresh recomputes from that date the spans of those households and of every household with a
    # visit on or after it (summary.refresh)
    visit_since: dt.date | None = None
    visit_households: set = field(default_factory=set)

    def only_visits(self) -> bool:
        """Did the import change visits and nothing else? (Then an incremental refresh is enough.)"""
        return (self.changed() and not self.replaced_demo and self.visit_since is not None
                and not any(n for t, n in [*self.inserted.items(), *self.updated.items()] if t != "visits"))

    def note_visits(self, pairs: Iterable[tuple[Any, Any]], updated: bool = False) -> None:
        """(household_id, visit_date) of written visits: the old and the new values of ``updated`` ones."""
        for household, day in pairs:
            if updated and household is not None:
                self.visit_households.add(household)
            if day is not None and (self.visit_since is None or day < self.visit_since):
                self.visit_since = day

    def changed(self) -> bool:
        """Did the import insert or update any row? (An import that changes nothing refreshes nothing.)"""
        return any(self.inserted.values()) or any(self.updated.values())

    def summary(self) -> str:
        parts = []
        for t in TABLE_ORDER:
            if t in self.inserted:
                parts.append(f"{t} 新增 {self.inserted[t]}、更新 {self.updated[t]}、未变 {self.unchanged[t]}")
        demo = "已清除此前的演示数据（该数据库不再是演示库，看板需要登录）；" if self.replaced_demo else ""
        if not parts:
            return f"导入完成：{demo}没有可导入的台账文件"
        if self.normalised:
            parts.append(f"已将 {self.normalised} 个全角字符值规范为半角")
        return "导入完成：" + demo + "；".join(parts)


class DecodeError(Exception):
    """The bytes of a file are not text in any supported encoding: ``lines`` holds (line, reason)."""

    def __init__(self, lines: list[tuple[int, str]]):
        super().__init__(lines[0][1] if lines else "decode error")
        self.lines = lines


_ENCODINGS_HINT = "支持 UTF-8（可带 BOM）、UTF-16 和 GB18030/GBK"
_MAX_DECODE_ERRORS = 20


def _bad_lines(data: bytes, encoding: str, what: str) -> list[tuple[int, str]]:
    """The lines holding bytes that do not decode, numbered as the CSV reader numbers them."""
    text = data.decode(encoding, errors="replace")
    bad = [n for n, line in enumerate(io.StringIO(text, newline=""), start=1) if "\ufffd" in line] or [1]
    out = [(n, f"含有无法按 {what} 解码的字节（{_ENCODINGS_HINT}；文件可能被截断、拼接或已损坏）")
           for n in bad[:_MAX_DECODE_ERRORS]]
    if len(bad) > _MAX_DECODE_ERRORS:
        out.append((bad[_MAX_DECODE_ERRORS], f"另有 {len(bad) - _MAX_DECODE_ERRORS} 行含有无法解码的字节（未逐行列出）"))
    return out


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM: the ASCII characters (digits, commas, line breaks) put a NUL byte in
    every other position, which UTF-8 and GBK text never has."""
    sample = data[:8192]
    even, odd = sample[0::2], sample[1::2]
    zeros_even, zeros_odd = even.count(0), odd.count(0)
    if zeros_odd >= max(2, len(odd) // 10) and zeros_even <= zeros_odd // 20:
        return "utf-16-le"
    if zeros_even >= max(2, len(even) // 10) and zeros_odd <= zeros_even // 20:
        return "utf-16-be"
    return None


def decode_bytes(data: bytes) -> str:
    """UTF-8 with or without BOM, UTF-16 with or without BOM, else GB18030 (what Excel in China writes).

    Raises DecodeError naming the lines that do not decode. A file that is UTF-8 except for a few bad
    bytes (cut off mid-character, or with lines pasted from a GBK file) is reported, not read as GBK:
    that would silently turn every Chinese character of it into mojibake.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = [(data[3:], "utf-8", "UTF-8")]
    elif data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        candidates = [(data, "utf-16", "UTF-16")]
    elif (enc := _utf16_without_bom(data)) is not None:
        candidates = [(data, enc, "UTF-16")]
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
        if non_ascii - bad > 2 * bad:  # mostly valid UTF-8: a damaged UTF-8 file, not GBK
            raise DecodeError(_bad_lines(data, "utf-8", "UTF-8"))
        candidates = [(data, "gb18030", "UTF-8 或 GB18030")]
    raw, encoding, what = candidates[0]
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise DecodeError(_bad_lines(raw, encoding, what)) from None


_CSV_ERRORS = (
    ("unexpected end of data", "引号未闭合：从本行开始的带引号单元格直到文件末尾都没有结束引号"),
    ("expected after", "引号用法错误：结束引号后应紧跟分隔符或换行（单元格内的引号应写成两个引号 \"\"）"),
    ("field larger than field limit", "单元格超过 131072 个字符（多半是从本行开始的引号没有闭合）"),
)


def _csv_reason(exc: csv.Error) -> str:
    msg = str(exc)
    for needle, reason in _CSV_ERRORS:
        if needle in msg:
            return reason
    return f"CSV 格式错误：{msg}"


def _delimiter(text: str) -> str:
    """Comma, or tab for what Excel saves as "Unicode text" (UTF-16, tab-separated)."""
    for line in io.StringIO(text, newline=""):
        if line.strip():
            return "\t" if "," not in line and "\t" in line else ","
    return ","


def _is_blank(cells: Iterable[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _read_text(path: Path) -> tuple[str, str]:
    """A CSV file's name and decoded text; unreadable or undecodable → ImportFailed (file:line: -: reason)."""
    label = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([f"{label}:1: -: 无法读取文件（{exc.strerror or exc.__class__.__name__}）"]) from None
    try:
        return label, decode_bytes(data)
    except DecodeError as exc:
        raise ImportFailed([f"{label}:{line}: -: {reason}" for line, reason in exc.lines]) from None


def read_csv_file(path: Path, table: str) -> Sheet:
    label, text = _read_text(path)
    return read_csv_file_text(label, table, text, _delimiter(text))


class _CsvSyntax(Exception):
    def __init__(self, line: int, reason: str):
        self.line, self.reason = line, reason


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line a record starts on, cells) of every record; _CsvSyntax on a syntax error."""
    # strict: an unclosed quote is an error, not a silent swallowing of every row after it
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1  # the line a record starts on (a quoted cell may span several lines)
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            yield line, cells
    except csv.Error as exc:
        raise _CsvSyntax(start, _csv_reason(exc)) from None


class CsvRows:
    """The non-blank records after the header line of a CSV text whose syntax has been checked:
    iterable any number of times, each time parsing the text again."""

    def __init__(self, text: str, delimiter: str, header_line: int):
        self.text, self.delimiter, self.header_line = text, delimiter, header_line

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        for line, cells in _csv_records(self.text, self.delimiter):
            if line > self.header_line and not _is_blank(cells):
                yield line, cells


def _xlsx_problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        return f"无法读取文件（{exc.strerror or exc.__class__.__name__}）"
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2: an old .xls, or an encrypted workbook
        return "这是旧版 .xls 格式或设置了密码的工作簿；请在 Excel 中另存为不加密的 .xlsx 后再导入"
    if not head.startswith(b"PK"):
        return "不是 Excel 工作簿（.xlsx 应为 zip 格式；文件可能已损坏或只是改了扩展名）"
    return None


def read_xlsx(path: Path, warnings: list[str] | None = None) -> list[Sheet]:
    try:
        import defusedxml  # noqa: F401  - openpyxl uses it when installed, against malicious workbooks
    except ImportError:  # pragma: no cover
        pass
    from openpyxl import load_workbook

    problem = _xlsx_problem(path)
    if problem:
        raise ImportFailed([f"{path.name}:1: -: {problem}"])
    # openpyxl warns on stderr about things it drops (data validation, missing default styles, odd
    # relationships): noise for whoever imports, never a reason to reject a ledger
    with warnings_module.catch_warnings():
        warnings_module.simplefilter("ignore")
        return _read_workbook(path, load_workbook, warnings)


def _read_workbook(path: Path, load_workbook, warnings: list[str] | None) -> list[Sheet]:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is one plain error
        raise ImportFailed([f"{path.name}:1: -: 无法读取 Excel 工作簿：文件不完整、已损坏或不是 .xlsx 工作簿"
                            f"（{exc.__class__.__name__}）"]) from None
    sheets = []
    try:
        for ws in wb.worksheets:
            table = ws.title.strip().removesuffix(".csv").lower()
            label = f"{path.name}[{ws.title}]"
            if table not in SPECS:
                if warnings is not None:
                    warnings.append(f"{label}: 不是台账表，已忽略")
                continue
            if hasattr(ws, "reset_dimensions"):
                # a wrong <dimension> (written by some tools) would silently cut rows and columns off
                ws.reset_dimensions()
            header = None
            header_line = 1
            rows = []
            i = 0
            try:
                for i, cells in enumerate(ws.iter_rows(values_only=True), start=1):
                    if _is_blank(cells):
                        continue
                    cells = list(cells)
                    if header is None:
                        header, header_line = ["" if c is None else str(c) for c in cells], i
                        continue
                    rows.append((i, cells))
            except Exception as exc:  # noqa: BLE001 - a damaged sheet is one plain error
                raise ImportFailed([f"{label}:{i + 1}: -: 工作表已损坏，无法读取（{exc.__class__.__name__}）"]) from None
            if header is None:  # an empty tab of a workbook template: nothing to import
                if warnings is not None:
                    warnings.append(f"{label}: 工作表是空的，已忽略")
                continue
            sheets.append(Sheet(table, label, header, rows, header_line))
    finally:
        wb.close()
    return sheets


def read_ledger(path: Path, read_csv: Callable[[Path, str], Any] | None = None) -> tuple[list[Any], list[str]]:
    """Returns the sheets found and warnings (e.g. files that are not ledger tables).

    Raises ImportFailed with the read errors of every file (not only the first unreadable one).
    ``read_csv`` reads one CSV file (default read_csv_file; the SQL validation passes read_csv_raw)."""
    read_csv = read_csv or read_csv_file
    warnings: list[str] = []
    if not path.exists():
        raise FileNotFoundError(f"台账路径不存在：{path}")
    if path.is_dir():
        sheets = []
        errors: list[str] = []
        for f in sorted(path.iterdir()):
            if f.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
                warnings.append(f"{f.name}: 文件夹中的 Excel 工作簿不会被导入（请单独导入该工作簿）")
                continue
            if f.suffix.lower() != ".csv":
                continue
            table = f.stem.strip().lower()
            if table not in SPECS:
                warnings.append(f"{f.name}: 不是台账表，已忽略")
                continue
            try:
                sheets.append(read_csv(f, table))
            except ImportFailed as exc:
                errors += exc.errors
        if errors:
            raise ImportFailed(errors)
        return sheets, warnings
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, warnings), warnings
    if path.suffix.lower() == ".csv" and path.stem.strip().lower() in SPECS:
        return [read_csv(path, path.stem.strip().lower())], warnings
    raise ValueError(f"无法导入 {path}：应为 CSV 文件所在的文件夹或一个 .xlsx 工作簿")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_SCI_RE = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_ID18_RE = re.compile(r"^[0-9]{17}[0-9Xx]$")
_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
INT_MAX = 2**31 - 1  # INTEGER on PostgreSQL


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, the check digit of an 18-digit resident ID (GB 11643)."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def _text_limits(table: str) -> dict[str, int]:
    """Column -> the most characters the database column holds (PostgreSQL enforces it)."""
    t = schema.LEDGER_TABLES[table]
    return {c.name: t.c[c.name].type.length for c in SPECS[table]
            if c.kind == "str" and getattr(t.c[c.name].type, "length", None)}


def _cell_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


class RowError(Exception):
    pass


class IdCheckDigitError(RowError):
    """An 18-character ID whose ISO 7064 MOD 11-2 check digit is wrong. CONTRACT.md does not make this
    a validation error (ledgers of other systems may carry test IDs), so by default it is a warning and
    the value is stored as given; with strict IDs (``--strict-ids`` / BANGFU_STRICT_IDS=1) it is an error."""

    def __init__(self, message: str, value: str):
        super().__init__(message)
        self.value = value


_SHOW_MAX = 80


def _show(value: Any) -> str:
    """A cell value for a one-line message: line breaks, control and invisible characters (zero-width
    spaces and the like) written as escapes, and long values shortened."""
    s = str(value)
    if len(s) > _SHOW_MAX:
        s = s[:_SHOW_MAX] + f"…（共 {len(s)} 个字符）"
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in s)


def convert(col: Col, raw: Any) -> Any:
    if col.kind == "date":
        if isinstance(raw, dt.datetime):
            return raw.date()
        if isinstance(raw, dt.date):
            return raw
        s = _cell_text(raw)
        m = _DATE_RE.match(s or "")
        if not m:
            raise RowError(f"日期格式错误 '{_show(s)}'（应为 YYYY-MM-DD）")
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise RowError(f"日期不存在 '{_show(s)}'") from None
    s = _cell_text(raw)
    if col.kind == "bool":
        if isinstance(raw, bool):
            return raw
        v = BOOL.get(s.lower())
        if v is None:
            raise RowError(f"无法识别的是否值 '{_show(s)}'（应为 1/0、是/否 或 true/false）")
        return v
    if col.kind in ("int", "year"):
        try:
            n = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise RowError(f"应为整数，实为 '{_show(s)}'") from None
            if not f.is_integer():
                raise RowError(f"应为整数，实为 '{_show(s)}'") from None
            n = int(f)
        if col.kind == "year" and not 1990 <= n <= 2100:
            raise RowError(f"年度 '{_show(s)}' 不在合理范围内")
        if col.kind == "int" and n < 0:
            raise RowError(f"不能为负数：'{_show(s)}'")
        if n > INT_MAX:
            raise RowError(f"数值过大：'{_show(s)}'")
        return n
    if col.kind == "enum":
        assert col.enum is not None
        v = col.enum.get(s.lower())
        if v is None:
            allowed = ENUM_CHOICES.get(col.name) or "/".join(sorted(set(col.enum.values())))
            raise RowError(f"无法识别的取值 '{_show(s)}'（可选：{allowed}）")
        return v
    # plain text; ids and codes must survive Excel (scientific notation means a number ate digits)
    if col.name in ("id_number", "phone") and _SCI_RE.match(s):
        raise RowError(f"'{_show(s)}' 是被 Excel 转成科学计数法的数字，原值已丢失；请把该列设为文本后重新导出")
    if col.name == "id_number":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and abs(raw) >= 1e15:
            raise RowError("身份证号是数字单元格，Excel 只保留 15 位有效数字，原值已丢失；"
                           "请把该列设为文本、重新录入后再导出")
        if _ID18_RE.match(s):
            check = id_check_digit(s[:17])
            if s[17].upper() != check:
                from .privacy import mask_id

                raise IdCheckDigitError(f"身份证号校验位错误：{mask_id(s)} 的末位应为 {check}（号码可能录错或被 Excel 改动）", s)
            return s[:17] + check  # a lower-case x is stored as X
        # other shapes (15-digit IDs, placeholders from other systems) pass through unchanged
    return s


def _map_header(sheet: Sheet, errors: list[str], warnings: list[str]) -> dict[str, int] | None:
    spec = SPECS[sheet.table]
    lookup: dict[str, str] = {}
    for col in spec:
        lookup[col.name.lower()] = col.name
        for zh in col.chinese:
            lookup[zh.lower()] = col.name
    positions: dict[str, int] = {}
    ok = True
    for i, h in enumerate(sheet.header):
        # "*户编号": templates mark required columns with an asterisk
        name = str(h or "").strip().lstrip("\ufeff").strip().strip("*＊").strip()
        if not name:
            continue
        canon = lookup.get(name.lower())
        if canon is None:
            warnings.append(f"{sheet.label}: 未知列 '{_show(name)}' 已忽略")
            continue
        if canon in positions:
            errors.append(f"{sheet.label}:{sheet.header_line}: {canon}: 列重复出现")
            ok = False
            continue
        positions[canon] = i
    if not positions:
        required = "、".join(f"{c.name}（{c.chinese[0]}）" for c in spec if c.required)
        errors.append(f"{sheet.label}:{sheet.header_line}: -: 表头没有可识别的列名（第一个非空行必须是表头，"
                      f"不能是标题；必需的列：{required}）")
        return None
    for col in spec:
        if col.required and col.name not in positions:
            errors.append(f"{sheet.label}:{sheet.header_line}: {col.name}: 缺少必需的列")
            ok = False
    return positions if ok else None


class Record(tuple):
    """A parsed row: its values in the table's SPECS order (what COPY writes), read by column name
    (``rec["helper_id"]``) or position. A tuple takes a quarter of a dict's memory (12 M visits)."""

    __slots__ = ()
    index: dict[str, int] = {}

    def __getitem__(self, key):
        if key.__class__ is str:
            return tuple.__getitem__(self, self.index[key])
        return tuple.__getitem__(self, key)

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.index, self))


RECORDS = {t: type(f"Record_{t}", (Record,), {"__slots__": (), "index": {c.name: i for i, c in enumerate(spec)}})
           for t, spec in SPECS.items()}


@dataclass
class Parsed:
    table: str
    label: str
    rows: list[tuple[int, Record]]
    normalised: int = 0  # cells whose value NFKC changed (full-width digits, letters, punctuation)


# Free text is stored as typed; every other cell (ids, codes, ID numbers, phones, dates, numbers,
# booleans, enum values) is NFKC-normalised before it is validated, so that full-width forms typed
# with a Chinese input method (１３０１０２, ２０２６－０６－３０, a full-width Ｘ) are read as their
# half-width forms.
FREE_TEXT = frozenset({"name", "head_name", "department", "position", "note"})


def fold_width(s: str) -> str:
    """NFKC of a stripped cell text (full-width digits, letters and punctuation to half-width)."""
    if s.isascii():
        return s
    return unicodedata.normalize("NFKC", s).strip()


class _Invalid:
    """Stands for a value that failed validation; such a row is reported, never written."""

    def __repr__(self):
        return "<invalid>"


INVALID = _Invalid()


def parse_sheet(sheet: Sheet, errors: list[str], warnings: list[str], strict_ids: bool = False) -> Parsed | None:
    """Convert every row; a bad value becomes INVALID (and an error) so that the row's other
    columns are still checked, references included."""
    positions = _map_header(sheet, errors, warnings)
    if positions is None:
        return None
    return _parse_rows(sheet, positions, errors, warnings, strict_ids)


def _parse_rows(sheet: Sheet, positions: dict[str, int], errors: list[str], warnings: list[str],
                strict_ids: bool = False) -> Parsed:
    """parse_sheet after the header: every row of ``sheet.rows`` (the SQL validation passes only the
    rows it flagged)."""
    label = sheet.label
    limits = _text_limits(sheet.table)
    # per column: where it is, its length limit, whether it is plain text (no conversion) or an enum
    plan = [(col, col.name, positions.get(col.name), limits.get(col.name),
             col.kind == "str" and col.name not in ("id_number", "phone"),
             col.enum if col.kind == "enum" else None, col.name not in FREE_TEXT)
            for col in SPECS[sheet.table]]
    # one object per distinct value of a date or a reference column (a 12 M-row visits file repeats
    # a few hundred dates and a million ids): the parsed rows take a fraction of the memory
    key = set(KEYS[sheet.table])
    shared = {col.name: {} for col in SPECS[sheet.table]
              if col.kind == "date" or (col.name.endswith(("_id", "_code")) and col.name not in key)}
    width = len(sheet.header)
    record = RECORDS[sheet.table]
    dates = (record.index["start_date"], record.index["end_date"]) if "end_date" in record.index else None
    out = []
    normalised = 0
    for line, cells in sheet.rows:
        n = len(cells)
        if sheet.check_width and n > width and not _is_blank(cells[width:]):
            # more cells than the header: a comma inside an unquoted cell shifted the columns
            errors.append(f"{label}:{line}: -: 本行有 {n} 个单元格，比表头的 {width} 列多"
                          f"（单元格中的逗号是否没有加引号？）")
        rec: list[Any] = []
        for col, name, pos, limit, plain, enum, fold in plan:
            raw = cells[pos] if pos is not None and pos < n else None
            if raw.__class__ is str:
                if "\x00" in raw:  # PostgreSQL cannot store it
                    errors.append(f"{label}:{line}: {name}: 含有空字符（NUL），文件可能已损坏")
                    rec.append(INVALID)
                    continue
                s = raw.strip()
                if fold and not s.isascii() and (folded := fold_width(s)) != s:
                    s = raw = folded
                    normalised += 1
                empty = not s
            else:
                s = None
                empty = _cell_text(raw) is None and not isinstance(raw, (dt.date, bool))
            if empty:
                if col.required:
                    errors.append(f"{label}:{line}: {name}: 缺少必填值")
                    rec.append(INVALID)
                else:
                    rec.append(None)
                continue
            if s is not None:  # fast paths for the common cases of text cells
                if (seen := shared.get(name)) is not None and (v := seen.get(s)) is not None:
                    rec.append(v)
                    continue
                if plain and (limit is None or len(s) <= limit):
                    rec.append(s if seen is None else seen.setdefault(s, s))
                    continue
                if enum is not None and (v := enum.get(s.lower())) is not None:
                    rec.append(v)
                    continue
            try:
                value = convert(col, raw)
                if limit is not None and len(value) > limit:
                    raise RowError(f"长度 {len(value)} 超过上限 {limit} 个字符")
                if s is not None and (seen := shared.get(name)) is not None:
                    seen[s] = value
                rec.append(value)
            except IdCheckDigitError as exc:
                if strict_ids:
                    errors.append(f"{label}:{line}: {name}: {exc}")
                    rec.append(INVALID)
                else:
                    warnings.append(f"{label}:{line}: {name}: {exc}；已按原值导入")
                    rec.append(exc.value)
            except RowError as exc:
                errors.append(f"{label}:{line}: {name}: {exc}")
                rec.append(INVALID)
        if dates is not None:
            start, end = rec[dates[0]], rec[dates[1]]
            if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
                errors.append(f"{label}:{line}: end_date: 结束日期 {end} 早于开始日期 {start}")
        out.append((line, record(rec)))
    return Parsed(sheet.table, label, out, normalised)


def _existing_ids(conn: Connection, column) -> set:
    return {r[0] for r in conn.execute(select(column))}


def validate(conn: Connection, sheets: list[Sheet], strict_ids: bool = False) -> tuple[dict[str, Parsed], list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    parsed: dict[str, Parsed] = {}
    seen_tables: dict[str, str] = {}
    for sheet in sheets:
        if sheet.table in seen_tables:
            errors.append(f"{sheet.label}:1: -: 表 {sheet.table} 重复（已有 {seen_tables[sheet.table]}）")
            continue
        seen_tables[sheet.table] = sheet.label
        p = parse_sheet(sheet, errors, warnings, strict_ids)
        if p is not None:
            parsed[sheet.table] = p

    # duplicate keys within the import
    for table, p in parsed.items():
        key = KEYS[table]
        first: dict[Any, int] = {}  # key (the value itself for a one-column key) -> its first line
        at = [RECORDS[table].index[c] for c in key]
        one = at[0] if len(at) == 1 else None
        for line, rec in p.rows:
            k = tuple.__getitem__(rec, one) if one is not None else tuple(tuple.__getitem__(rec, i) for i in at)
            if (k is INVALID) if one is not None else any(x is INVALID for x in k):
                continue
            seen = first.setdefault(k, line)
            if seen != line:
                shown = str(k) if one is not None else "/".join(str(x) for x in k)
                errors.append(
                    f"{p.label}:{line}: {key[0] if len(key) == 1 else '+'.join(key)}: "
                    f"重复的编号 {_show(shown)}（第 {seen} 行已有）"
                )

    # reference sets: what the database has, overlaid with what this import brings
    region_level = {r.code: r.level for r in conn.execute(select(schema.regions.c.code, schema.regions.c.level))}
    if "regions" in parsed:
        for _, rec in parsed["regions"].rows:
            if rec["code"] is not INVALID and rec["level"] is not INVALID:
                region_level[rec["code"]] = rec["level"]
    unit_ids = _existing_ids(conn, schema.units.c.unit_id) if _needs(parsed, "units") else set()
    helper_ids = _existing_ids(conn, schema.helpers.c.helper_id) if _needs(parsed, "helpers") else set()
    household_ids = _existing_ids(conn, schema.households.c.household_id) if _needs(parsed, "households") else set()
    for t, ids, col in (("units", unit_ids, "unit_id"), ("helpers", helper_ids, "helper_id"),
                        ("households", household_ids, "household_id")):
        if t in parsed:
            ids.update(rec[col] for _, rec in parsed[t].rows if rec[col] is not INVALID)

    def ref(p: Parsed, line: int, col: str, value, ids, what: str):
        if value is not None and value is not INVALID and value not in ids:
            errors.append(f"{p.label}:{line}: {col}: 引用了不存在的{what} '{_show(value)}'")

    if "regions" in parsed:
        p = parsed["regions"]
        for line, rec in p.rows:
            parent = rec["parent_code"]
            if parent is None or INVALID in (parent, rec["level"], rec["code"]):
                continue
            if parent == rec["code"]:
                errors.append(f"{p.label}:{line}: parent_code: 上级代码不能是自身")
            elif parent not in region_level:
                errors.append(f"{p.label}:{line}: parent_code: 上级区划 '{_show(parent)}' 不存在")
            elif LEVEL_RANK[region_level[parent]] >= LEVEL_RANK[rec["level"]]:
                errors.append(
                    f"{p.label}:{line}: parent_code: 上级区划 '{_show(parent)}' 的级别（{region_level[parent]}）"
                    f"不高于本区划（{rec['level']}）"
                )
    if "units" in parsed:
        p = parsed["units"]
        for line, rec in p.rows:
            ref(p, line, "region_code", rec["region_code"], region_level, "区划")
    if "helpers" in parsed:
        p = parsed["helpers"]
        for line, rec in p.rows:
            ref(p, line, "unit_id", rec["unit_id"], unit_ids, "派出单位")
    for t in ("households", "assignments"):
        if t in parsed:
            p = parsed[t]
            for line, rec in p.rows:
                code = rec["village_code"]
                if code is INVALID:
                    pass
                elif code not in region_level:
                    errors.append(f"{p.label}:{line}: village_code: 引用了不存在的区划 '{_show(code)}'")
                elif region_level[code] != "village":
                    errors.append(f"{p.label}:{line}: village_code: 区划 '{_show(code)}' 不是村级（而是 {region_level[code]}）")
                if t == "assignments":
                    ref(p, line, "unit_id", rec["unit_id"], unit_ids, "派出单位")
    for t in ("pairings", "visits"):
        if t in parsed:
            p = parsed[t]
            for line, rec in p.rows:
                ref(p, line, "helper_id", rec["helper_id"], helper_ids, "帮扶责任人")
                ref(p, line, "household_id", rec["household_id"], household_ids, "贫困户")
    if "ratings" in parsed:
        p = parsed["ratings"]
        for line, rec in p.rows:
            ref(p, line, "helper_id", rec["helper_id"], helper_ids, "帮扶责任人")
    return parsed, errors, warnings


def _needs(parsed: dict[str, Parsed], table: str) -> bool:
    deps = {
        "units": ("helpers", "assignments"),
        "helpers": ("pairings", "visits", "ratings"),
        "households": ("pairings", "visits"),
    }
    return any(t in parsed for t in deps[table])


def _error_sort_key(line: str):
    m = re.match(r"^(.*?):(\d+):", line)
    if not m:
        return (99, line, 0)
    label = m.group(1)
    stem = re.sub(r"\.csv$", "", label.split("[")[-1].rstrip("]").strip().lower())
    order = TABLE_ORDER.index(stem) if stem in TABLE_ORDER else 98
    return (order, label, int(m.group(2)))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _chunks(seq: list, n: int) -> Iterable[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and only for large tables."""

    def __init__(self, label: str, total: int, stream=None, threshold: int = 20000):
        self.stream = stream or sys.stderr
        self.enabled = total >= threshold and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total, self.done = label, total, 0

    def advance(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += n
        frac = self.done / self.total if self.total else 1
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label:<12} [{bar:<30}] {self.done:>10,}/{self.total:,}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


BULK_ROWS = 100_000  # PostgreSQL: from this many new rows on, the secondary indexes may be rebuilt


def _row_estimate(conn: Connection, name: str) -> int:
    from sqlalchemy import text

    n = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": name}).scalar()
    return max(int(n or 0), 0)


def _secondary_indexes(conn: Connection, name: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    from sqlalchemy import text

    return [tuple(r) for r in conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = :t "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = to_regclass(:t) AND c.conname = i.indexname) "
        "ORDER BY i.indexname"), {"t": name})]


def _write_table_postgresql(conn: Connection, p: Parsed, result: ImportResult, progress_stream=None) -> None:
    """PostgreSQL: COPY into a temporary staging table, then one UPDATE of the changed rows and one
    INSERT of the new ones (set-based; ~10x faster than row-by-row upserts)."""
    from sqlalchemy import text

    name = schema.LEDGER_TABLES[p.table].name
    cols = [c.name for c in SPECS[p.table]]
    stage = f"stage_{name}"
    q = lambda c: '"' + c + '"'  # noqa: E731 - column names are our own constants
    conn.execute(text(f"CREATE TEMP TABLE {stage} (LIKE {name}) ON COMMIT DROP"))
    bar = Progress(p.table, len(p.rows), progress_stream)
    cur = conn.connection.driver_connection.cursor()
    with cur.copy(f"COPY {stage} ({', '.join(map(q, cols))}) FROM STDIN") as copy:
        for i, (_, rec) in enumerate(p.rows, start=1):
            copy.write_row(rec)  # a Record holds the values in cols order
            if i % 50000 == 0:
                bar.advance(50000)
    bar.advance(len(p.rows) % 50000)
    bar.close()
    _merge_stage(conn, p.table, stage, len(p.rows), result)


def _merge_stage(conn: Connection, table: str, stage: str, rows: int, result: ImportResult) -> None:
    """Upsert the rows of a staging table (the ledger table's columns, maybe more) into the ledger table:
    one UPDATE of the changed rows and one INSERT of the new ones; drops the staging table."""
    from sqlalchemy import text

    name = schema.LEDGER_TABLES[table].name
    key = KEYS[table]
    cols = [c.name for c in SPECS[table]]
    other = [c for c in cols if c not in key]
    q = lambda c: '"' + c + '"'  # noqa: E731 - column names are our own constants
    join = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    if other:
        differs = f"({', '.join('t.' + q(c) for c in other)}) IS DISTINCT FROM ({', '.join('s.' + q(c) for c in other)})"
    else:
        differs = "FALSE"
    # visits: also the earliest new visit's date (ImportResult.note_visits), in the same pass
    first_new = f", min(s.visit_date) FILTER (WHERE t.{q(key[0])} IS NULL)" if table == "visits" else ", NULL"
    inserted, updated, first = conn.execute(
        text(
            f"SELECT count(*) FILTER (WHERE t.{q(key[0])} IS NULL), "
            f"count(*) FILTER (WHERE t.{q(key[0])} IS NOT NULL AND {differs}){first_new} "
            f"FROM {stage} s LEFT JOIN {name} t ON {join}"
        )
    ).one()
    if table == "visits":
        result.note_visits([(None, first)])
    if table == "visits" and updated:  # the updated ones: old and new values (a visit may move to another household)
        changed = f"FROM {stage} s JOIN {name} t ON {join} WHERE {differs}"
        result.note_visits(conn.execute(text(
            f"SELECT s.household_id, min(s.visit_date) {changed} GROUP BY s.household_id "
            f"UNION ALL SELECT t.household_id, min(t.visit_date) {changed} GROUP BY t.household_id")).all(),
            updated=True)
    if updated:
        conn.execute(
            text(f"UPDATE {name} t SET {', '.join(f'{q(c)} = s.{q(c)}' for c in other)} "
                 f"FROM {stage} s WHERE {join} AND {differs}")
        )
    if inserted:
        # a large load (more new rows than the table holds): drop the secondary indexes and build them
        # again afterwards, which is several times faster than maintaining them row by row
        # — only into an empty table: DROP INDEX takes an ACCESS EXCLUSIVE lock that every reader of the table
        # would wait on until the import commits, and nobody reads an empty table's rows
        rebuild = (_secondary_indexes(conn, name)
                   if inserted >= BULK_ROWS and not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {name})")).scalar()
                   else [])
        for index_name, _ in rebuild:
            conn.execute(text(f'DROP INDEX "{index_name}"'))
        conn.execute(
            text(f"INSERT INTO {name} ({', '.join(map(q, cols))}) SELECT {', '.join('s.' + q(c) for c in cols)} "
                 f"FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM {name} t WHERE {join})")
        )
        if rebuild:
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            for _, definition in rebuild:
                conn.execute(text(definition))
    conn.execute(text(f"DROP TABLE {stage}"))
    result.inserted[table] = int(inserted)
    result.updated[table] = int(updated)
    result.unchanged[table] = rows - int(inserted) - int(updated)


def write_table(conn: Connection, p: Parsed, result: ImportResult, progress_stream=None) -> None:
    if conn.dialect.name == "postgresql":
        return _write_table_postgresql(conn, p, result, progress_stream)
    table = schema.LEDGER_TABLES[p.table]
    key = KEYS[p.table]
    cols = [c.name for c in SPECS[p.table]]
    records = [rec.as_dict() for _, rec in p.rows]
    chunk = 500 if conn.dialect.name == "sqlite" else 5000
    inserted = updated = unchanged = 0
    bar = Progress(p.table, len(records), progress_stream)
    key_cols = [table.c[k] for k in key]
    for part in _chunks(records, chunk):
        if len(key) == 1:
            cond = key_cols[0].in_([r[key[0]] for r in part])
        else:
            cond = tuple_(*key_cols).in_([tuple(r[k] for k in key) for r in part])
        existing = {
            tuple(row[:len(key)]): row[len(key):]
            for row in conn.execute(select(*key_cols, *[table.c[c] for c in cols if c not in key]).where(cond))
        }
        new, changed = [], []
        other = [c for c in cols if c not in key]
        for r in part:
            k = tuple(r[c] for c in key)
            if k not in existing:
                new.append(r)
            elif tuple(existing[k]) != tuple(r[c] for c in other):
                changed.append(r)
            else:
                unchanged += 1
        if p.table == "visits":
            at = [other.index("household_id"), other.index("visit_date")]
            result.note_visits((None, r["visit_date"]) for r in new)
            result.note_visits([(r["household_id"], r["visit_date"]) for r in changed]
                               + [tuple(existing[tuple(r[c] for c in key)][i] for i in at) for r in changed],
                               updated=True)
        if new:
            conn.execute(table.insert(), new)
            inserted += len(new)
        if changed:
            from sqlalchemy import bindparam

            stmt = (
                table.update()
                .where(and_(*[table.c[k] == bindparam("k_" + k) for k in key]))
                .values({c: bindparam("v_" + c) for c in other})
            )
            conn.execute(
                stmt,
                [{**{"k_" + k: r[k] for k in key}, **{"v_" + c: r[c] for c in other}} for r in changed],
            )
            updated += len(changed)
        bar.advance(len(part))
    bar.close()
    result.inserted[p.table] = inserted
    result.updated[p.table] = updated
    result.unchanged[p.table] = unchanged


def _replace_demo(conn: Connection) -> bool:
    """A database that holds generated demo data (meta demo=1): empty its ledger and summaries and clear the
    marker, so that real rows are never served under the demo's no-login mode (ui/auth.py) and never mix
    with generated ones. Users and the audit log are kept. Returns True when it did so."""
    marker = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "demo")).scalar()
    if marker != "1":
        return False
    from .summary import STATUS_TABLES

    for name in STATUS_TABLES:
        conn.execute(schema.metadata.tables[name].delete())
    for table in reversed([schema.LEDGER_TABLES[t] for t in TABLE_ORDER]):
        conn.execute(table.delete())
    conn.execute(schema.meta.delete().where(schema.meta.c.key.like("demo%")))
    log.info("demo data removed before the import")
    return True


def import_ledger(engine: Engine, path: str | Path, progress_stream=None,
                  after_write: Callable[[Connection], None] | None = None,
                  refresh_summaries: bool = True, strict_ids: bool | None = None,
                  validation: str = "auto") -> ImportResult:
    """Validate every row of every file, then write all of it in one transaction.

    Raises ImportFailed (with every error) and writes nothing when any row is invalid. The metric
    summaries are refreshed in the same transaction, so they always match the ledger.

    ``validation``: "auto" validates CSV ledgers on PostgreSQL (13+) in SQL after a raw COPY into
    temporary staging tables (ingest section below) and everything else in Python; "python" forces the
    Python validation. Both report the same errors, warnings and rows; ``ImportResult.validated_by`` and
    ``ImportFailed.validated_by`` say which one ran.
    """
    if validation not in ("auto", "python"):
        raise ValueError(f"validation must be 'auto' or 'python', not {validation!r}")
    path = Path(path)
    if validation == "auto" and engine.dialect.name == "postgresql" and (
            path.is_dir() or (path.suffix.lower() == ".csv" and path.stem.strip().lower() in SPECS)):
        try:
            return _import_sql(engine, path, progress_stream, after_write, refresh_summaries, strict_ids)
        except _UsePython as exc:  # rolled back: nothing was written
            log.info("SQL validation not possible (%s): validating in Python", exc)
    return _import_python(engine, path, progress_stream, after_write, refresh_summaries, strict_ids)


def _import_python(engine: Engine, path: Path, progress_stream, after_write, refresh_summaries: bool,
                   strict_ids: bool | None) -> ImportResult:
    t0 = time.perf_counter()
    sheets, warnings = read_ledger(path)
    timings = {"read": time.perf_counter() - t0}
    log.info("read: %.1f s", timings["read"])
    with engine.begin() as conn:
        replaced_demo = _replace_demo(conn)  # rolled back with everything else when the ledger is invalid
        if strict_ids is None:
            strict_ids = settings.strict_ids()
        t0 = time.perf_counter()
        parsed, errors, more_warnings = validate(conn, sheets, strict_ids)
        del sheets
        timings["validate"] = time.perf_counter() - t0
        log.info("parsed and validated: %.1f s", timings["validate"])
        warnings += more_warnings
        if errors:
            raise ImportFailed(sorted(errors, key=_error_sort_key), validated_by="python")
        result = ImportResult(warnings=warnings, replaced_demo=replaced_demo,
                              normalised=sum(p.normalised for p in parsed.values()), validated_by="python",
                              timings=timings)
        t_write = time.perf_counter()
        for table in TABLE_ORDER:
            if table in parsed:
                t0 = time.perf_counter()
                write_table(conn, parsed.pop(table), result, progress_stream)
                log.info("%s written: %.1f s", table, time.perf_counter() - t0)
        timings["write"] = time.perf_counter() - t_write
        changed = _after_writes(conn, result, refresh_summaries, after_write)
    if refresh_summaries and changed:
        from .summary import tidy

        tidy(engine)
    return result


def _after_writes(conn: Connection, result: ImportResult, refresh_summaries: bool,
                  after_write: Callable[[Connection], None] | None) -> bool:
    """Region ancestors, the summaries' refresh and the caller's hook, in the import's transaction.
    Returns whether the import changed anything."""
    if result.inserted.get("regions") or result.updated.get("regions"):
        refresh_ancestors(conn)
    changed = result.changed() or result.replaced_demo
    if refresh_summaries and changed:
        from .summary import lock_refresh, refresh

        t0 = time.perf_counter()
        lock_refresh(conn)  # one refresh at a time (the running dashboard keeps "today" current too)
        if result.only_visits():  # the dates from the earliest visit touched, those households' spans
            refresh(conn, since=result.visit_since, households=result.visit_households)
        else:
            refresh(conn)
        result.timings["refresh"] = time.perf_counter() - t0
        log.info("summaries refreshed: %.1f s", result.timings["refresh"])
    if after_write is not None:
        after_write(conn)
    return changed


# --------------------------------------------------------------------------------------------
# SQL validation (PostgreSQL): raw COPY into staging, set-based checks, Python for flagged rows only
# --------------------------------------------------------------------------------------------
#
# Each CSV file's text goes unparsed into a temporary table of text columns (COPY … FORMAT csv; a file
# with quotes, NUL-free but not raw-loadable, or whose records span lines, is parsed by Python's csv
# module and its cells COPYed instead). One CREATE TABLE … AS SELECT then trims (Python's whitespace),
# NFKC-folds (normalize(…, NFKC)), checks required values, lengths and ID check digits, and converts dates,
# numbers, booleans and enum values through small maps that Python fills from the *distinct* values of
# those columns (a 12 M-row file repeats a few hundred dates). A row any check may object to is flagged
# (a superset of the rows with errors or warnings) and only those rows go through the Python row parser,
# which words the message — so every error is the Python path's `file:line: column: reason`. Duplicate
# ids, references and region levels are set-based queries; their messages use the same wording. The
# checked rows are merged into the ledger tables from the staging table with INSERT … SELECT.


class _UsePython(Exception):
    """The SQL validation cannot take this ledger (xlsx, NUL bytes, PostgreSQL < 13, a cell beyond the
    csv module's field limit, …): the caller rolls back and validates in Python."""


# the characters str.strip() removes (PostgreSQL's btrim() removes only what it is given)
_PY_WS = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_CSV_FIELD_LIMIT = 131072
_LINE_END = re.compile(r"\r\n|\r|\n")
_COPY_CHUNK = 1 << 20


@dataclass
class RawCsv:
    table: str
    label: str
    text: str
    delimiter: str
    header: list[str]
    header_line: int
    body_offset: int | None  # quote-free text: where the line after the header starts; None: parse it


def read_csv_raw(path: Path, table: str) -> RawCsv:
    """read_csv_file for the SQL validation: the same read errors, but a quote-free text (every record
    one line, no syntax to check) is not parsed at all — only its header is found."""
    label, text = _read_text(path)
    if "\x00" in text:
        raise _UsePython(f"{label}: NUL")
    delimiter = _delimiter(text)
    if '"' in text:  # quotes: the csv module checks the syntax and the rows are parsed when staged
        sheet = read_csv_file_text(label, table, text, delimiter)
        return RawCsv(table, label, text, delimiter, sheet.header, sheet.header_line, None)
    pos, line = 0, 0
    for m in _LINE_END.finditer(text):
        line += 1
        cells = text[pos:m.start()].split(delimiter)
        pos = m.end()
        if not _is_blank(cells):
            return _quote_free(label, table, text, delimiter, cells, line, pos)
    if pos < len(text):  # the last line has no line break
        cells = text[pos:].split(delimiter)
        if not _is_blank(cells):
            return _quote_free(label, table, text, delimiter, cells, line + 1, len(text))
    raise ImportFailed([f"{label}:1: -: 文件是空的（没有表头行）"])


def _quote_free(label, table, text, delimiter, header, header_line, offset) -> RawCsv:
    if any(len(c) > _CSV_FIELD_LIMIT for c in header):
        raise _UsePython(f"{label}: header cell beyond the csv field limit")
    return RawCsv(table, label, text, delimiter, header, header_line, offset)


def read_csv_file_text(label: str, table: str, text: str, delimiter: str) -> Sheet:
    """read_csv_file's syntax check and header search on a decoded text. The first pass only checks the syntax
    and finds the header; the rows are read again, one at a time, when they are parsed (CsvRows), so that a
    12 M-row file is never held as lists of cells."""
    header: list[Any] | None = None
    header_line = 1
    try:
        for line, cells in _csv_records(text, delimiter):
            if header is None and not _is_blank(cells):
                header, header_line = cells, line
    except _CsvSyntax as exc:
        raise ImportFailed([f"{label}:{exc.line}: -: {exc.reason}"]) from None
    if header is None:
        raise ImportFailed([f"{label}:1: -: 文件是空的（没有表头行）"])
    return Sheet(table, label, header, CsvRows(text, delimiter, header_line), header_line, check_width=True)


def _lines_after(text: str, offset: int) -> int:
    """Lines of text[offset:] as io.StringIO(newline="") splits them (\\r\\n, \\r or \\n)."""
    n = text.count("\n", offset) + text.count("\r", offset) - text.count("\r\n", offset)
    return n + (1 if len(text) > offset and text[-1] not in "\r\n" else 0)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _trim(expr: str) -> str:
    return f"btrim({expr}, {_lit(_PY_WS)})"


_PG_TYPES = {"date": "date", "bool": "boolean", "int": "integer", "year": "integer", "enum": "text"}


def _cell_value(col: Col, raw: str | None, limit: int | None, strict_ids: bool) -> tuple[Any, bool, bool]:
    """What _parse_rows makes of one text cell: (value, valid, normalised). Used for the distinct values
    of the date, number, boolean and enum columns (the flagged rows are re-parsed for the wording)."""
    if raw is None:
        raw = ""
    s = raw.strip()
    normalised = False
    if col.name not in FREE_TEXT and not s.isascii() and (folded := fold_width(s)) != s:
        s, normalised = folded, True
    if not s:
        return None, not col.required, normalised
    try:
        value = convert(col, s)
        if limit is not None and len(value) > limit:
            return None, False, normalised
        return value, True, normalised
    except IdCheckDigitError as exc:
        return (None, False, normalised) if strict_ids else (exc.value, True, normalised)
    except RowError:
        return None, False, normalised


@dataclass
class _Staged:
    table: str
    label: str
    rows: int  # non-blank rows
    normalised: int


def _id_check_sql(v: str) -> str:
    total = " + ".join(f"substr({v}, {i + 1}, 1)::int * {w}" for i, w in enumerate(_ID_WEIGHTS))
    return f"substr('10X98765432', ({total}) % 11 + 1, 1)"


def _stage_sheet(conn: Connection, raw: RawCsv, errors: list[str], warnings: list[str],
                 strict_ids: bool) -> _Staged | None:
    """Load one file into ingest_raw_T, check and convert it into ingest_T (the ledger table's columns
    plus ln), and word the errors and warnings of its flagged rows. None when its header is unusable."""
    from sqlalchemy import text as sql

    t0 = time.perf_counter()
    table, label = raw.table, raw.label
    header_sheet = Sheet(table, label, raw.header, [], raw.header_line, check_width=True)
    positions = _map_header(header_sheet, errors, warnings)
    if positions is None:
        return None
    width = len(raw.header)
    cols = [f"c{i}" for i in range(width)]
    rawt, stage = f"ingest_raw_{table}", f"ingest_{table}"
    conn.execute(sql(f"CREATE TEMP TABLE {rawt} (ln bigint, {', '.join(c + ' text' for c in cols)}) ON COMMIT DROP"))
    cur = conn.connection.driver_connection.cursor()
    loaded = False
    if raw.body_offset is not None:  # quote-free: the text itself, numbered by a sequence
        seq = f"ingest_seq_{table}"
        conn.execute(sql(f"CREATE TEMP SEQUENCE {seq} START {raw.header_line + 1}"))
        conn.execute(sql(f"ALTER TABLE {rawt} ALTER ln SET DEFAULT nextval('{seq}')"))
        delim = "E'\\t'" if raw.delimiter == "\t" else "','"
        cur.execute("SAVEPOINT ingest_raw_copy")
        try:
            with cur.copy(f"COPY {rawt} ({', '.join(cols)}) FROM STDIN (FORMAT csv, DELIMITER {delim})") as copy:
                body = raw.text
                for i in range(raw.body_offset, len(body), _COPY_CHUNK):
                    copy.write(body[i:i + _COPY_CHUNK])
            copied = cur.rowcount
        except Exception as exc:  # noqa: BLE001 - ragged rows, blank lines, mixed line ends: parse instead
            cur.execute("ROLLBACK TO SAVEPOINT ingest_raw_copy")
            log.info("%s: raw COPY refused (%s), parsing in Python", label, str(exc).splitlines()[0])
        else:
            if copied == _lines_after(raw.text, raw.body_offset):
                cur.execute("RELEASE SAVEPOINT ingest_raw_copy")
                loaded = True
            else:  # a line PostgreSQL reads differently (\\.): parse instead
                cur.execute("ROLLBACK TO SAVEPOINT ingest_raw_copy")
        conn.execute(sql(f"ALTER TABLE {rawt} ALTER ln DROP DEFAULT"))
        conn.execute(sql(f"DROP SEQUENCE {seq}"))  # a temporary sequence outlives the transaction
    if not loaded:  # the csv module parses; its records (non-blank, after the header) are COPYed
        with cur.copy(f"COPY {rawt} (ln, {', '.join(cols)}) FROM STDIN") as copy:
            try:
                for line, cells in _csv_records(raw.text, raw.delimiter):
                    if line <= raw.header_line or _is_blank(cells):
                        continue
                    n = len(cells)
                    if n > width and not _is_blank(cells[width:]):
                        errors.append(f"{label}:{line}: -: 本行有 {n} 个单元格，比表头的 {width} 列多"
                                      f"（单元格中的逗号是否没有加引号？）")
                    copy.write_row((line, *cells[:width], *([None] * (width - n))))
            except _CsvSyntax as exc:  # checked when read; kept for safety
                raise ImportFailed([f"{label}:{exc.line}: -: {exc.reason}"]) from None
    raw.text = ""  # the text is in the database now
    conn.execute(sql(f"ANALYZE {rawt}"))
    t_copy = time.perf_counter() - t0

    # distinct values of the converted columns -> Python -> maps
    limits = _text_limits(table)
    spec = SPECS[table]
    mapped = [c for c in spec if c.kind != "str" and c.name in positions]
    maps: dict[str, str] = {}
    if mapped:
        exprs = [f"coalesce(c{positions[c.name]}, '')" for c in mapped]
        sets = ", ".join(f"({e})" for e in exprs)
        distinct = conn.execute(sql(
            f"SELECT {', '.join(exprs)}, GROUPING({', '.join(exprs)}) FROM {rawt} GROUP BY GROUPING SETS ({sets})"
            if len(mapped) > 1 else f"SELECT DISTINCT {exprs[0]}, 0 FROM {rawt}")).all()
        for i, col in enumerate(mapped):
            bit = 1 << (len(mapped) - 1 - i)
            values = {r[i] for r in distinct if len(mapped) == 1 or r[-1] == (2 ** len(mapped) - 1) - bit}
            m = f"ingest_map_{table}_{col.name}"
            maps[col.name] = m
            conn.execute(sql(f"CREATE TEMP TABLE {m} (k text PRIMARY KEY, v {_PG_TYPES[col.kind]}, ok boolean, nf boolean) "
                             "ON COMMIT DROP"))
            with cur.copy(f"COPY {m} (k, v, ok, nf) FROM STDIN") as copy:
                for k in values:
                    v, ok, nf = _cell_value(col, k, None, strict_ids)
                    copy.write_row((k, v, ok, nf))
            conn.execute(sql(f"ANALYZE {m}"))

    # the checked, converted rows: ledger columns + ln + flag (Python must look) + nf (cells NFKC changed)
    blank = " AND ".join(f"coalesce({_trim(c)}, '') = ''" for c in cols)
    t_cols, f_cols, outer, flags, nfs, joins = [], [], [], [], [], []
    for col in spec:
        name, pos = col.name, positions.get(col.name)
        q = f'"{name}"'
        if col.kind != "str":
            if pos is None:
                outer.append(f"NULL::{_PG_TYPES[col.kind]} AS {q}")
                continue
            m = maps[name]
            joins.append(f"LEFT JOIN {m} m_{name} ON m_{name}.k = coalesce(r.c{pos}, '')")
            t_cols.append(f"m_{name}.v AS v_{name}, coalesce(m_{name}.ok, false) AS ok_{name}, "
                          f"coalesce(m_{name}.nf, false) AS nf_{name}")
            outer.append(f"v_{name} AS {q}")
            flags.append(f"NOT ok_{name}")
            nfs.append(f"nf_{name}::int")
            continue
        if pos is None:
            outer.append(f"NULL::text AS {q}")
            continue
        t = _trim(f"r.c{pos}")
        if name in FREE_TEXT:
            t_cols.append(f"NULLIF({t}, '') AS v_{name}")
        else:
            t_cols.append(f"{t} AS t_{name}")
            f_cols.append(f"CASE WHEN octet_length(t_{name}) <> length(t_{name}) "
                          f"THEN {_trim(f'normalize(t_{name}, NFKC)')} ELSE t_{name} END AS f_{name}")
            nfs.append(f"(f_{name} IS DISTINCT FROM t_{name})::int")
        limit = limits.get(name)
        v = f"v_{name}"
        if name not in FREE_TEXT:
            outer_v = f"NULLIF(f_{name}, '')"
        else:
            outer_v = v
        if col.required:
            flags.append(f"{outer_v} IS NULL")
        if limit is not None:
            flags.append(f"length({outer_v}) > {limit}")
        if name in ("id_number", "phone"):
            flags.append(f"{outer_v} ~ '[eE]'")
        if name == "id_number":
            is18 = f"{outer_v} ~ '^[0-9]{{17}}[0-9Xx]$'"
            ok18 = f"upper(substr({outer_v}, 18, 1)) = {_id_check_sql(outer_v)}"
            flags.append(f"({is18} AND NOT {ok18})")
            outer.append(f"CASE WHEN {is18} AND {ok18} THEN upper({outer_v}) ELSE {outer_v} END AS {q}")
        elif limit is not None and (name in KEYS[table] or name.endswith(("_id", "_code")) or name == "code"):
            # keys and references hold exactly what the Python path calls valid (else NULL)
            outer.append(f"CASE WHEN length({outer_v}) <= {limit} THEN {outer_v} END AS {q}")
        else:
            outer.append(f"{outer_v} AS {q}")
    if "end_date" in positions and "start_date" in positions:
        flags.append('("end_date" < "start_date")')  # evaluated on the converted columns below
    giant = " OR ".join(f"length(r.c{i}) > {_CSV_FIELD_LIMIT}" for i in range(width))
    inner = (f"SELECT r.ln, ARRAY[{', '.join('r.' + c for c in cols)}] AS cells, ({giant}) AS giant"
             + "".join(", " + c for c in t_cols)
             + f" FROM {rawt} r {' '.join(joins)} WHERE NOT ({blank}) OFFSET 0")
    middle = f"SELECT i.*{''.join(', ' + c for c in f_cols)} FROM ({inner}) i OFFSET 0"
    row_flags = [f for f in flags if f != '("end_date" < "start_date")']
    typed = f"SELECT ln, cells, giant, {' + '.join(nfs) or '0'} AS nf, ({' OR '.join(row_flags) or 'false'}) AS rowflag, " \
            f"{', '.join(outer)} FROM ({middle}) m"
    date_flag = ' OR coalesce("end_date" < "start_date", false)' if '("end_date" < "start_date")' in flags else ""
    conn.execute(sql(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT ln, {', '.join(q for q in _quoted(spec))}, "
        f"(rowflag OR giant{date_flag}) AS flag, giant, nf, CASE WHEN rowflag OR giant{date_flag} THEN cells END AS cells "
        f"FROM ({typed}) x"))
    conn.execute(sql(f"DROP TABLE {rawt}"))
    t_check = time.perf_counter() - t0 - t_copy
    rows, normalised, giant_rows = conn.execute(sql(
        f"SELECT count(*), coalesce(sum(nf), 0), count(*) FILTER (WHERE giant) FROM {stage}")).one()
    if giant_rows:
        raise _UsePython(f"{label}: a cell beyond the csv module's field limit")
    flagged = Sheet(table, label, raw.header,
                    [(int(ln), ["" if c is None else c for c in cells]) for ln, cells in conn.execute(sql(
                        f"SELECT ln, cells FROM {stage} WHERE flag ORDER BY ln"))],
                    raw.header_line, check_width=False)
    if flagged.rows:
        _parse_rows(flagged, positions, errors, warnings, strict_ids)
    conn.execute(sql(f"ALTER TABLE {stage} DROP COLUMN cells, DROP COLUMN giant"))
    conn.execute(sql(f"ANALYZE {stage}"))
    log.info("%s: staged %.1f s, checked %.1f s, %d flagged of %d rows", label, t_copy, t_check,
             len(flagged.rows), rows)
    return _Staged(table, label, int(rows), int(normalised))


def _quoted(spec: list[Col]) -> list[str]:
    return [f'"{c.name}"' for c in spec]


def _sql_duplicates(conn: Connection, staged: dict[str, _Staged], errors: list[str]) -> None:
    """validate()'s duplicate keys: every later row whose key an earlier row of the file has."""
    from sqlalchemy import text as sql

    for table, st in staged.items():
        key = KEYS[table]
        k = ", ".join(f'"{c}"' for c in key)
        rows = conn.execute(sql(
            f"SELECT s.ln, {', '.join('s.' + chr(34) + c + chr(34) for c in key)}, d.first FROM ingest_{table} s "
            f"JOIN (SELECT {k}, min(ln) AS first FROM ingest_{table} WHERE {' AND '.join(f'{chr(34)}{c}{chr(34)} IS NOT NULL' for c in key)} "
            f"GROUP BY {k} HAVING count(*) > 1) d USING ({k}) WHERE s.ln > d.first ORDER BY s.ln")).all()
        for r in rows:
            values = r[1:1 + len(key)]
            shown = str(values[0]) if len(key) == 1 else "/".join(str(x) for x in values)
            errors.append(f"{st.label}:{r[0]}: {key[0] if len(key) == 1 else '+'.join(key)}: "
                          f"重复的编号 {_show(shown)}（第 {r[-1]} 行已有）")


def _sql_references(conn: Connection, staged: dict[str, _Staged], errors: list[str]) -> None:
    """validate()'s references, region parents and village levels, in its order."""
    from sqlalchemy import text as sql

    def ids(table: str, col: str) -> str:
        """The ids the database has, and those this import brings."""
        own = f" UNION SELECT {col} FROM ingest_{table} WHERE {col} IS NOT NULL" if table in staged else ""
        return f"(SELECT {col} FROM {table}{own})"

    if {"regions", "units", "households", "assignments"} & staged.keys():
        # region code -> level: the database's, overlaid with the import's (the last row of a code wins)
        own = ("UNION ALL SELECT code, level, 1, ln FROM ingest_regions WHERE code IS NOT NULL AND level IS NOT NULL"
               if "regions" in staged else "")
        conn.execute(sql(
            "CREATE TEMP TABLE ingest_levels ON COMMIT DROP AS SELECT DISTINCT ON (code) code, level FROM "
            f"(SELECT code, level, 0 AS src, 0::bigint AS ln FROM regions {own}) x ORDER BY code, src DESC, ln DESC"))
        conn.execute(sql("ALTER TABLE ingest_levels ADD PRIMARY KEY (code)"))
        conn.execute(sql("ANALYZE ingest_levels"))
    if "regions" in staged:
        label = staged["regions"].label
        for ln, code, parent, level, plevel in conn.execute(sql(
                "SELECT s.ln, s.code, s.parent_code, s.level, p.level FROM ingest_regions s "
                "LEFT JOIN ingest_levels p ON p.code = s.parent_code WHERE s.parent_code IS NOT NULL "
                "AND s.code IS NOT NULL AND s.level IS NOT NULL AND (s.parent_code = s.code OR p.level IS NULL "
                f"OR {_rank_sql('p.level')} >= {_rank_sql('s.level')}) ORDER BY s.ln")):
            if parent == code:
                errors.append(f"{label}:{ln}: parent_code: 上级代码不能是自身")
            elif plevel is None:
                errors.append(f"{label}:{ln}: parent_code: 上级区划 '{_show(parent)}' 不存在")
            else:
                errors.append(f"{label}:{ln}: parent_code: 上级区划 '{_show(parent)}' 的级别（{plevel}）"
                              f"不高于本区划（{level}）")

    def missing(table: str, checks: list[tuple[str, str, str]]) -> None:
        """Rows of `table` whose column refers to no id of the set: (column, id set, what)."""
        if table not in staged:
            return
        label = staged[table].label
        joins = " ".join(f"LEFT JOIN {ids_sql} j{i} ON j{i}.{ref} = s.{col}"
                         for i, (col, ids_sql, ref, _) in enumerate(checks))
        bad = [f"(s.{col} IS NOT NULL AND j{i}.{ref} IS NULL)" for i, (col, _, ref, _) in enumerate(checks)]
        for r in conn.execute(sql(
                f"SELECT s.ln, {', '.join(f's.{c[0]}, {b}' for c, b in zip(checks, bad))} FROM ingest_{table} s {joins} "
                f"WHERE {' OR '.join(bad)} ORDER BY s.ln")):
            for i, (col, _, _, what) in enumerate(checks):
                if r[2 + 2 * i]:
                    errors.append(f"{label}:{r[0]}: {col}: 引用了不存在的{what} '{_show(r[1 + 2 * i])}'")

    missing("units", [("region_code", "ingest_levels", "code", "区划")])
    missing("helpers", [("unit_id", ids("units", "unit_id"), "unit_id", "派出单位")])
    for t in ("households", "assignments"):
        if t not in staged:
            continue
        label = staged[t].label
        unit = t == "assignments"
        for r in conn.execute(sql(
                f"SELECT s.ln, s.village_code, v.level, {'s.unit_id, u.unit_id IS NULL' if unit else 'NULL, false'} "
                f"FROM ingest_{t} s LEFT JOIN ingest_levels v ON v.code = s.village_code "
                + (f"LEFT JOIN {ids('units', 'unit_id')} u ON u.unit_id = s.unit_id " if unit else "")
                + "WHERE (s.village_code IS NOT NULL AND (v.level IS NULL OR v.level <> 'village'))"
                + (" OR (s.unit_id IS NOT NULL AND u.unit_id IS NULL)" if unit else "") + " ORDER BY s.ln")):
            ln, code, level, unit_id, bad_unit = r
            if code is not None and level is None:
                errors.append(f"{label}:{ln}: village_code: 引用了不存在的区划 '{_show(code)}'")
            elif code is not None and level != "village":
                errors.append(f"{label}:{ln}: village_code: 区划 '{_show(code)}' 不是村级（而是 {level}）")
            if bad_unit and unit_id is not None:
                errors.append(f"{label}:{ln}: unit_id: 引用了不存在的派出单位 '{_show(unit_id)}'")
    for t in ("pairings", "visits"):
        missing(t, [("helper_id", ids("helpers", "helper_id"), "helper_id", "帮扶责任人"),
                    ("household_id", ids("households", "household_id"), "household_id", "贫困户")])
    missing("ratings", [("helper_id", ids("helpers", "helper_id"), "helper_id", "帮扶责任人")])


def _rank_sql(expr: str) -> str:
    return "CASE " + expr + " " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in LEVEL_RANK.items()) + " END"


def _import_sql(engine: Engine, path: Path, progress_stream, after_write, refresh_summaries: bool,
                strict_ids: bool | None) -> ImportResult:
    from sqlalchemy import text as sql

    t_start = time.perf_counter()
    raws, warnings = read_ledger(path, read_csv_raw)
    timings = {"read": time.perf_counter() - t_start}
    log.info("read (SQL validation): %.1f s", timings["read"])
    with engine.begin() as conn:
        version = conn.execute(sql("SELECT current_setting('server_version_num')::int, "
                                   "current_setting('server_encoding')")).one()
        if version[0] < 130000 or version[1] != "UTF8":
            raise _UsePython("normalize(text, NFKC) needs PostgreSQL 13+ with UTF8")
        replaced_demo = _replace_demo(conn)  # rolled back with everything else when the ledger is invalid
        if strict_ids is None:
            strict_ids = settings.strict_ids()
        conn.execute(sql("SET LOCAL work_mem = '256MB'"))
        t0 = time.perf_counter()
        errors: list[str] = []
        staged: dict[str, _Staged] = {}
        seen_tables: dict[str, str] = {}
        for raw in raws:
            if raw.table in seen_tables:
                errors.append(f"{raw.label}:1: -: 表 {raw.table} 重复（已有 {seen_tables[raw.table]}）")
                continue
            seen_tables[raw.table] = raw.label
            st = _stage_sheet(conn, raw, errors, warnings, strict_ids)
            if st is not None:
                staged[raw.table] = st
        del raws
        timings["stage_and_check"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _sql_duplicates(conn, staged, errors)
        _sql_references(conn, staged, errors)
        timings["cross_checks"] = time.perf_counter() - t0
        timings["validate"] = timings["stage_and_check"] + timings["cross_checks"]
        log.info("validated in SQL: %.1f s + %.1f s", timings["stage_and_check"], timings["cross_checks"])
        if errors:
            raise ImportFailed(sorted(errors, key=_error_sort_key), validated_by="sql")
        result = ImportResult(warnings=warnings, replaced_demo=replaced_demo,
                              normalised=sum(st.normalised for st in staged.values()), validated_by="sql",
                              timings=timings)
        t0 = time.perf_counter()
        for table in TABLE_ORDER:
            if table in staged:
                t1 = time.perf_counter()
                _merge_stage(conn, table, f"ingest_{table}", staged[table].rows, result)
                log.info("%s written: %.1f s", table, time.perf_counter() - t1)
        timings["write"] = time.perf_counter() - t0
        changed = _after_writes(conn, result, refresh_summaries, after_write)
    if refresh_summaries and changed:
        from .summary import tidy

        tidy(engine)
    return result
