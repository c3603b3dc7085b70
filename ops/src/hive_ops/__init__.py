"""Operating Hive: the readiness gates and what they read (docs/operations.md, "The readiness gates")."""
