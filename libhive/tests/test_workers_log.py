"""A background round that fails because the environment did (lightningd's socket closed at shutdown, a relay or a
sibling down) logs a warning without a traceback, even when the failure is wrapped; a bug keeps its traceback."""
import logging

import pytest

from libhive.errors import HiveError
from libhive.identity import IdentityError
from libhive.workers import log_failure


class RelayDown(HiveError):
    environmental = True


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def failing(exc: BaseException) -> list[logging.LogRecord]:
    log = logging.getLogger(f"test-workers-{id(exc)}")
    handler = Records()
    log.addHandler(handler)
    log.propagate = False
    try:
        raise exc
    except BaseException:
        log_failure(log, "round %s failed", "x")
    return handler.records


def wrapped_refusal() -> IdentityError:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise IdentityError(f"signmessage failed: {cause}") from cause
    except IdentityError as exc:
        return exc


@pytest.mark.parametrize("exc", [ConnectionRefusedError(111, "Connection refused"), RelayDown("no relay"),
                                 "wrapped"])
def test_the_environment_failing_is_a_warning(exc):
    records = failing(wrapped_refusal() if exc == "wrapped" else exc)
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]
    assert "round x failed" in records[0].getMessage()


def test_a_bug_keeps_its_traceback():
    records = failing(KeyError("oops"))
    assert records[0].levelno == logging.ERROR and records[0].exc_info is not None
