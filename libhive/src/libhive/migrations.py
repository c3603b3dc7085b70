"""A plugin's migration set, in sqlite-utils' format, with sqlite-utils loaded only when a migration must run.

Written like sqlite-utils' ``Migrations`` (the same decorator, names and ``transactional`` flag, the same
``_sqlite_migrations`` records, so databases written before are read the same), but importing sqlite-utils costs
every plugin about 4 MB and 60 ms at start, while on most starts nothing is pending.  ``libhive.db`` compares the
recorded names with :attr:`names` using sqlite3 alone, and asks for :meth:`sqlite_utils` only when something
is pending (a new database, or an upgrade).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

MigrationFn = Callable[[Any], None]        # receives a sqlite_utils.Database


@dataclass(frozen=True)
class Migration:
    name: str
    fn: MigrationFn
    transactional: bool = True


class Migrations:
    def __init__(self, name: str) -> None:
        self.name = name
        self._migrations: list[Migration] = []
        self._loaded: Any = None

    def __call__(self, *, name: str | None = None, transactional: bool = True) -> Callable[[MigrationFn], MigrationFn]:
        """Register a migration (named after the function unless ``name`` is given); order is registration order."""
        def register(fn: MigrationFn) -> MigrationFn:
            migration_name = name or fn.__name__
            if migration_name in self.names:
                raise ValueError(f"migration {migration_name!r} is already registered in set {self.name!r}")
            if self._loaded is not None:
                raise RuntimeError(f"migration set {self.name!r} is in use; register migrations at import time")
            self._migrations.append(Migration(migration_name, fn, transactional))
            return fn
        return register

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._migrations]

    def sqlite_utils(self) -> Any:
        """The same set as a ``sqlite_utils.Migrations`` (imports sqlite-utils; built once)."""
        if self._loaded is None:
            import sqlite_utils
            loaded = sqlite_utils.Migrations(self.name)
            for m in self._migrations:
                loaded(name=m.name, transactional=m.transactional)(m.fn)
            self._loaded = loaded
        return self._loaded


def names_of(migrations: Any) -> list[str]:
    """The names of a set, ours or a sqlite-utils one (tests build those), in order."""
    if isinstance(migrations, Migrations):
        return migrations.names
    import sqlite_utils
    scratch = sqlite_utils.Database(memory=True, execute_plugins=False)
    try:
        return [m.name for m in migrations.pending(scratch)]       # on an empty database all are pending
    finally:
        scratch.close()


def as_sqlite_utils(migrations: Any) -> Any:
    return migrations.sqlite_utils() if isinstance(migrations, Migrations) else migrations
