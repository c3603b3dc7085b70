"""cl-hive-archon's RPC errors: codes 1800-1899 (see libhive/errors.py and docs/architecture.md)."""
from __future__ import annotations

from libhive.errors import HiveError


class ArchonError(HiveError):
    """General cl-hive-archon failure."""
    code = 1800


class IdentityUnavailable(ArchonError):
    """The node's DID key could not be derived (makesecret failed) or is not ready yet."""
    code = 1801


class NetworkDisabled(ArchonError):
    """The request needs the gatekeeper, and network use is off or no gateway is set."""
    code = 1802


class GatewayError(ArchonError):
    """The gatekeeper is unreachable, refused by policy (private address, redirect), or answered badly."""
    code = 1803

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class NotFound(ArchonError):
    """A DID, credential, message or backup that was asked for does not exist."""
    code = 1804


class VerificationFailed(ArchonError):
    """A proof, binding or credential did not verify."""
    code = 1805


class CommsUnavailable(ArchonError):
    """The request needs cl-hive-comms (Nostr binding, Dmail), which is not active: archon runs degraded."""
    code = 1806
    environmental = True


class BackupRefused(ArchonError):
    """A backup or restore was refused: a sibling still running, a bundle that does not decrypt or check out."""
    code = 1807


class NotAllowed(ArchonError):
    """The operation is not ours to do (e.g. revoking a credential another DID issued)."""
    code = 1808


class OperationTooLarge(ArchonError):
    """A DID operation would be larger, signed, than the gatekeeper accepts (``JSON.stringify`` length over
    64 KiB): refused before it is queued or sent."""
    code = 1809

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size
