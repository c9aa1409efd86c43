"""A PostgreSQL outage during an open dashboard session: one clear message, then the right figures again
in the same process, without restarting the app.

The outage is real, not mocked: the app reaches PostgreSQL through a TCP relay on a port of its own; the
test cuts the relay (every open connection is reset and new ones are refused, as during a restart) and
then brings it back on the same port."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import db
from data_access import metrics as m
from data_access.ledger import import_ledger
from ui import format as fmt

from .conftest import _empty, free_port, write_ledger
from .pages_ledger import AS_OF, tables

APP = str(Path(__file__).resolve().parent.parent / "app.py")


class Relay:
    """A TCP relay 127.0.0.1:port -> target that can be cut and restored."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.server: socket.socket | None = None

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        self.server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self.server is not None:
            try:  # wakes the thread blocked in accept(); a bare close() would leave the port listening
                self.server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.server.close()
            self.server = None
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()


def _coverage_text(engine, day) -> str:
    tot = m.total_row(m.coverage(engine, day, "province"), "coverage")
    return fmt.pct(tot["covered"] / tot["households"])


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_postgresql_outage_then_recovery_in_the_same_process(pg_engine, tmp_path, monkeypatch):
    _empty(pg_engine)
    import_ledger(pg_engine, write_ledger(tmp_path / "l", tables()))
    with pg_engine.begin() as conn:
        db.set_meta(conn, "demo", "1")  # no users: the demo viewer, no login needed
    # each run asks for another date, so that no cached result can stand in for the database
    days = [AS_OF, AS_OF - dt.timedelta(days=1), AS_OF - dt.timedelta(days=2)]
    expected = [_coverage_text(pg_engine, d) for d in days]

    url = pg_engine.url
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relay.start()
    monkeypatch.setenv("DATABASE_URL", url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["as_of"] = days[0].isoformat()
        at.run()
        assert not at.exception and not _errors(at)
        assert any(mt.value == expected[0] for mt in at.metric)

        relay.cut()  # the database goes away while the session is open
        at.query_params["as_of"] = days[1].isoformat()
        at.run()
        assert not at.exception
        errors = _errors(at)
        assert len(errors) == 1 and "数据库" in errors[0], errors
        assert not at.metric  # no figures under the message

        relay.start()  # back on the same port: the next rerun shows the right figures again
        at.query_params["as_of"] = days[2].isoformat()
        at.run()
        assert not at.exception and not _errors(at)
        assert any(mt.value == expected[2] for mt in at.metric)
    finally:
        relay.cut()
        st.cache_data.clear()
        st.cache_resource.clear()


@pytest.fixture(autouse=True)
def _only_with_postgresql():
    from .conftest import PG_URL

    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set (.ci/run sets it)")
