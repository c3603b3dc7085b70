"""cl-hive-archon: a Core Lightning plugin of the Hive fleet."""

__version__ = "0.1.0"
