"""cl_hive_comms."""
