"""libhive."""
