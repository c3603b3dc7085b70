"""cl_hive_archon."""
