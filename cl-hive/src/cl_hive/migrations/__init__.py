"""cl-hive's schema: one forward-only ``Migrations("cl-hive")`` set, recorded by name in the plugin's database
(see libhive.db), split into one file per group of capabilities.

An existing database recognises its applied migrations by *name*, and a new one applies them in *registration
order*, which is the import order below.  Both are fixed once shipped (cl-hive/tests/test_migrations.py pins the
list): never rename, reorder or edit a migration; append new ones.  Name ranges, so parallel work does not
collide: m001-m099 core and fleet, m100-m199 governance, fees and cl-revenue-ops, m200-m299 settlement,
m300-m399 coordination, m400-m499 rollout from the monolith.  A new capability's migrations go in a new file here, imported after the last one.
"""
from libhive.migrations import Migrations

migrations = Migrations("cl-hive")

# each module registers its migrations on ``migrations`` when imported, so this line fixes their order
from . import core, fleet, governance  # noqa: E402,F401
from . import coordination  # noqa: E402,F401
from . import rollout  # noqa: E402,F401
from . import settlement  # noqa: E402,F401
from . import mixed_bans  # noqa: E402,F401

__all__ = ["migrations"]
