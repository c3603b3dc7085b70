"""hive_devnet."""
