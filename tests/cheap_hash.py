"""A cheaper argon2 for tests that make many sign-in attempts (the throttling rules need dozens).

The real argon2id hasher with a small memory and time cost: passwords are still hashed and verified for
real, only faster (the default parameters cost about a second per verification on a busy two-core
machine). Tests of the cost itself (unknown and existing names take about as long) do not use it."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from data_access import users


@pytest.fixture
def cheap_hash(monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(users, "_dummy_hash", None)  # made again with the cheap hasher, restored after
    yield
