"""Row helpers the table movers share: insert a row only if it is not there yet, and count the outcome."""
from __future__ import annotations

from typing import Any

from libhive.monolith import Line


def add(line: Line, inserted: bool) -> None:
    """Count one row: moved now, or already there (a second run moves nothing)."""
    if inserted:
        line.moved += 1
    else:
        line.present += 1


def insert(conn: Any, table: str, row: dict[str, Any]) -> bool:
    """INSERT OR IGNORE; True if the row was new."""
    cols = ", ".join(row)
    cur = conn.execute(f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
    return cur.rowcount == 1


def exists(conn: Any, table: str, where: dict[str, Any]) -> bool:
    cond = " AND ".join(f"{k} IS ?" for k in where)
    return conn.execute(f"SELECT 1 FROM {table} WHERE {cond} LIMIT 1", tuple(where.values())).fetchone() is not None


def one(conn: Any, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    """The first row of a query on the import's connection, as a dict (or None)."""
    cur = conn.execute(sql, args)
    row = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], row)) if row else None
