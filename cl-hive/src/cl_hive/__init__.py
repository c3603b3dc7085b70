"""cl_hive."""
