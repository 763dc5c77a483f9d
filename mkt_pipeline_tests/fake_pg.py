"""A scriptable stand-in for a psycopg connection to QuestDB's PG wire endpoint.

It answers the metadata queries the sink issues (``tables()``, ``table_columns()``, ``wal_tables()``,
``LIMIT -1`` latest-row queries) from plain Python data, records every statement, and can replay a
script of ``wal_tables()`` answers to drive backpressure and suspension paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from mkt_pipeline.core.tables import TableSchema


class FakeCursor:
    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def fetchone(self):
        return self._rows[0] if self._rows else None


def columns_of(schema: TableSchema, overrides: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> list[tuple]:
    """``table_columns()`` rows for a schema, optionally with changed types or missing columns."""
    overrides = overrides or {}
    return [
        (c.name, overrides.get(c.name, c.kind), c.name == schema.timestamp, c.name in schema.dedup_keys)
        for c in schema.columns
        if c.name not in drop
    ]


@dataclass
class FakePG:
    """Existing tables (name -> ``table_columns()`` rows), WAL answers and latest timestamps."""

    tables: dict[str, list[tuple]] = field(default_factory=dict)
    wal_script: list[list[tuple]] = field(default_factory=list)  # consumed one answer per query
    latest: dict[str, int] = field(default_factory=dict)
    fail_on: Callable[[str], Exception | None] | None = None
    statements: list[str] = field(default_factory=list)
    closed: bool = False

    def execute(self, sql: str, params: Any = None) -> FakeCursor:
        self.statements.append(sql)
        if self.fail_on is not None:
            exc = self.fail_on(sql)
            if exc is not None:
                raise exc
        if sql.startswith("SELECT table_name FROM tables()"):
            return FakeCursor([(name,) for name in self.tables])
        m = re.search(r"FROM table_columns\('(\w+)'\)", sql)
        if m:
            return FakeCursor(self.tables.get(m.group(1), []))
        if "FROM wal_tables()" in sql:
            if len(self.wal_script) > 1:
                return FakeCursor(self.wal_script.pop(0))
            return FakeCursor(self.wal_script[0] if self.wal_script else [])
        m = re.search(r"FROM (\w+) LIMIT -1", sql)
        if m:
            value = self.latest.get(m.group(1))
            return FakeCursor([] if value is None else [(value,)])
        m = re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+)", sql)
        if m and m.group(1) not in self.tables:
            self.tables[m.group(1)] = []
        return FakeCursor([])

    def close(self) -> None:
        self.closed = True

    def ddl(self) -> list[str]:
        return [s for s in self.statements if s.startswith("CREATE")]
