"""Methods no policy override can open to an advisor."""
import pytest

from cl_hive_comms import danger


@pytest.mark.parametrize("method", ["hive-archon-recover", "hive-archon-restore", "hive-archon-backup",
                                    "hive-archon-credential-issue", "hive-archon-bind-node", "hive-comms-pay",
                                    "hive-client-authorize", "signmessage", "makesecret", "withdraw", "plugin"])
def test_identity_and_secret_methods_are_forbidden(method):
    assert danger.is_forbidden(method)


def test_read_only_hive_status_stays_reachable():
    assert not danger.is_forbidden("hive-status") and not danger.is_forbidden("listpeerchannels")
