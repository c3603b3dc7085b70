"""Which plugin owns which tables.

Each plugin keeps its own SQLite file, but the three plugins are developed
together and share helper code, so nothing but this registry stops one
plugin from creating or writing tables that belong to a sibling (for
instance after a copy-pasted migration).  :mod:`libhive.db` enforces the
registry inside SQLite itself with an authorizer, so a violating statement
fails instead of silently succeeding.

Names are matched the way SQLite resolves them: ASCII case-insensitively.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

MIGRATIONS_TABLE = "_sqlite_migrations"
"""sqlite-utils' migration bookkeeping; every plugin may maintain it."""

_SQLITE_INTERNAL_PREFIX = "sqlite_"
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# Table.transform() in sqlite-utils copies a table to "<name>_new_<hex>"
# and renames it back within the same transaction.  Without this rule a
# migration could never transform a table that is owned by exact name.
_TRANSFORM_COPY = re.compile(r"(?P<base>.+)_new_[0-9a-f]+")


def fold(name: str) -> str:
    """Normalise a table name so that names SQLite treats as equal compare equal."""
    return name.translate(_ASCII_FOLD)


def is_bookkeeping(table: str) -> bool:
    """SQLite's internal tables and the migrations table are nobody's property."""
    name = fold(table)
    return name.startswith(_SQLITE_INTERNAL_PREFIX) or name == MIGRATIONS_TABLE


@dataclass(frozen=True)
class TablePolicy:
    """The tables one plugin may create, alter, drop and write.

    ``tables`` are exact names, ``prefixes`` cover every name that starts
    with them.  Exact names also cover the transient copies sqlite-utils'
    ``Table.transform()`` makes (``<name>_new_<hex>``).
    """

    plugin: str
    tables: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (*self.tables, *self.prefixes):
            if name != fold(name) or not name:
                raise ValueError(f"{self.plugin}: table names must be non-empty lower case: {name!r}")
            covers_bookkeeping = name in self.prefixes and (
                _SQLITE_INTERNAL_PREFIX.startswith(name) or MIGRATIONS_TABLE.startswith(name)
            )
            if is_bookkeeping(name) or covers_bookkeeping:
                raise ValueError(f"{self.plugin}: {name!r} overlaps SQLite/migration bookkeeping")

    def allows(self, table: str) -> bool:
        """True if ``table`` belongs to this plugin (bookkeeping tables do not)."""
        name = fold(table)
        if name in self.tables or name.startswith(self.prefixes):
            return True
        copy = _TRANSFORM_COPY.fullmatch(name)
        return copy is not None and copy["base"] in self.tables

    def sample_names(self) -> Iterable[str]:
        """Names that exercise every rule of this policy, for overlap checks."""
        for table in self.tables:
            yield table
            yield f"{table}_new_0"
        for prefix in self.prefixes:
            yield prefix
            yield f"{prefix}0"


OWNERSHIP: Mapping[str, TablePolicy] = MappingProxyType(
    {
        "cl-hive": TablePolicy(
            plugin="cl-hive",
            prefixes=("hive_", "settlement_", "escrow_"),
        ),
        "cl-hive-comms": TablePolicy(
            plugin="cl-hive-comms",
            tables=frozenset({"nostr_state", "management_receipts"}),
            # comms_: the transport's durable queues and caches (outbox, inbox, replay records, bindings)
            prefixes=("marketplace_", "liquidity_", "comms_"),
        ),
        "cl-hive-archon": TablePolicy(
            plugin="cl-hive-archon",
            tables=frozenset({"did_credentials", "did_reputation_cache"}),
            prefixes=("archon_",),
        ),
    }
)


def check_registry(ownership: Mapping[str, TablePolicy]) -> None:
    """Raise ValueError if any table name would be owned by two plugins.

    Two rule sets overlap only if one of them accepts a name that is a
    representative of a rule of the other (an exact name, a prefix, or a
    transform copy), so checking those representatives is sufficient.
    """
    for key, policy in ownership.items():
        if key != policy.plugin:
            raise ValueError(f"registry key {key!r} holds the policy of {policy.plugin!r}")
    policies = list(ownership.values())
    for i, first in enumerate(policies):
        for second in policies[i + 1 :]:
            for name in (*first.sample_names(), *second.sample_names()):
                if first.allows(name) and second.allows(name):
                    raise ValueError(
                        f"table {name!r} would be owned by both {first.plugin} and {second.plugin}"
                    )


def owner_of(table: str, ownership: Mapping[str, TablePolicy] = OWNERSHIP) -> str | None:
    """The plugin that owns ``table``, or None for bookkeeping and unclaimed names."""
    if is_bookkeeping(table):
        return None
    for policy in ownership.values():
        if policy.allows(table):
            return policy.plugin
    return None


def policy_for(plugin: str) -> TablePolicy:
    """The policy of ``plugin``; unknown plugins are a programming error."""
    try:
        return OWNERSHIP[plugin]
    except KeyError:
        raise ValueError(f"unknown plugin {plugin!r}; known: {', '.join(OWNERSHIP)}") from None


check_registry(OWNERSHIP)
