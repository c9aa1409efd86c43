"""Every metric declared once: its name, what it counts, how its rows are grouped, which date it takes, whether
it is stored, and where it is shown. The query (metrics.py), the store (summary.py), the command line, the
reports, the bench and the tests read this table; what a metric *is* (its fact rows) lives in rules.py.

Adding a metric — say "helpers with no in-home visit in six months" — touches four files: its fact rows in
rules.py, its entry here (with ``rows``: the query then reads it through ``metrics.compute``, the refresh stores
it for every summary date, ``bangfu metrics`` offers it when ``cli=True``), the page that shows it (``ui.data.metric``), and its
test. tests/test_registry.py adds one that way and checks each of those readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Metric:
    name: str                  # the command line's and JSON's name (CONTRACT.md)
    rule: str                  # its section in RULES.md
    title: str                 # what a user reads
    fields: tuple[str, ...]    # the summed fields of its fact rows, in output order (at most 4 when stored)
    primary: str | None        # a group is listed when this field is non-zero (None: when any field is)
    basis: str                 # fact rows grouped by the household's region ("village") or the helper unit's ("unit")
    when: str = "day"          # the date it takes: "day" (as of), "year" (rating year), "period" (start..end)
    cli: bool = False          # offered by `bangfu metrics`
    problem: str | None = None  # its problem list (`bangfu problems`), if any
    page: str | None = None    # the page that shows it
    # the live fact rows of a day metric without a query function of its own in metrics.py:
    # rows(conn, as_of, scope) -> a select of village_code, unit_id and the fields. Such a metric is answered by
    # metrics.compute and stored by the refresh for every summary date.
    rows: Callable | None = None

    def __post_init__(self):
        if self.primary is not None and self.primary not in self.fields:
            raise ValueError(f"metric {self.name}: primary field {self.primary} is not one of its fields")
        if self.basis not in ("village", "unit") or self.when not in ("day", "year", "period"):
            raise ValueError(f"metric {self.name}: basis {self.basis!r} / when {self.when!r} unknown")
        if self.rows is not None and (self.when != "day" or len(self.fields) > 4):
            raise ValueError(f"metric {self.name}: stored rows need a day metric with at most four fields")


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name} declared twice")
    REGISTRY[metric.name] = metric
    return metric


for _m in (
    Metric("coverage", "M1", "帮扶覆盖", ("households", "covered", "weak"), "households", "village", cli=True,
           problem="uncovered", page="coverage"),
    Metric("cap", "M2", "结对上限", ("helpers", "violators", "excess"), "helpers", "unit", cli=True, problem="cap",
           page="cap"),
    Metric("cadence", "M3", "走访频次", ("active_pairings", "overdue"), "active_pairings", "village", cli=True,
           problem="overdue", page="cadence"),
    Metric("ratings", "M4", "年度考核", ("excellent", "qualified", "unqualified", "missing"), None, "unit",
           when="year", cli=True, page="ratings"),
    Metric("replacements", "M5", "责任人调整", ("replacements", "unapproved"), "replacements", "unit",
           problem="unapproved", page="overview"),
    Metric("photos", "M6", "入户照片", ("in_home_visits", "with_photo"), "in_home_visits", "village", when="period",
           page="overview"),
):
    register(_m)


def metric(name: str) -> Metric:
    if name not in REGISTRY:
        raise ValueError(f"unknown metric '{name}'")
    return REGISTRY[name]


def fields(name: str) -> list[str]:
    return list(metric(name).fields)


def primary(name: str) -> str | None:
    return metric(name).primary


def cli_names() -> list[str]:
    return [m.name for m in REGISTRY.values() if m.cli]


def generic() -> list[Metric]:
    """The day metrics answered and stored from their declared fact rows."""
    return [m for m in REGISTRY.values() if m.rows is not None]

