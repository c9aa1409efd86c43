"""The scope of a question (a region and/or a sending unit) and the connection helper every query takes.
The bottom of data_access: rules, store, query and access all use them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class Scope:
    """What part of the province a question is about: a region (any level) and/or a sending unit.

    Frozen and hashable so that it is part of every cache key.
    """

    region: str | None = None
    unit: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "region", (self.region or None) and str(self.region).strip() or None)
        object.__setattr__(self, "unit", (self.unit or None) and str(self.unit).strip() or None)


ALL = Scope()


class Conn:
    """Accept an Engine or a Connection wherever a metric is asked for."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind
        self.conn = None

    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.conn = self.bind.connect()
        return self.conn

    def __exit__(self, *exc):
        if self.conn is not None:
            self.conn.close()

