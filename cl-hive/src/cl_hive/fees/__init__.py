"""The hive fee policy on channels to hive nodes (zero fees between members by default): ``policy``, and
``revenue_policy_bridge``, which keeps cl-revenue-ops from fighting it."""
from .policy import FeePolicy, register

__all__ = ["FeePolicy", "register"]
