"""Errors of cl-hive-comms' client half (advisors, policy, receipts, marketplaces, payments): codes 1950-1999.

The transport half of comms uses its own range; see libhive/errors.py and docs/architecture.md for the table.
Clients match on the code, never on the message text.
"""
from __future__ import annotations

from libhive.errors import HiveError


class ClientError(HiveError):
    """General failure of the client half of comms."""
    code = 1950


class AuthenticationFailed(ClientError):
    """An advisor request is malformed, its signature does not verify, or it is not addressed to this node."""
    code = 1951


class ReplayRejected(ClientError):
    """An advisor request reuses a nonce, or its timestamp is outside the allowed skew."""
    code = 1952


class RateLimited(ClientError):
    """An advisor sent more requests than its rate limit allows."""
    code = 1953


class NotAuthorized(ClientError):
    """The advisor is unknown, revoked, or its trial/contract has ended."""
    code = 1954


class PolicyDenied(ClientError):
    """The method is not on the allowlist, not in the advisor's permissions, blocked, or too dangerous."""
    code = 1955


class ConfirmationError(ClientError):
    """A confirmation id that does not exist or was already decided."""
    code = 1956


class NotFound(ClientError):
    """An advisor, payment, contract, offer or lease that was asked for does not exist."""
    code = 1957


class ExecutionFailed(ClientError):
    """An authorised advisor action ran and failed (the node or plugin returned an error)."""
    code = 1958


class PaymentFailed(ClientError):
    """A payment was attempted and failed; nothing was paid."""
    code = 1960


class SpendLimitExceeded(ClientError):
    """A payment would exceed the global or the advisor's daily spending limit; nothing was paid."""
    code = 1961


class IdempotencyConflict(ClientError):
    """An idempotency key was reused with different payment parameters."""
    code = 1962


class PaymentPending(ClientError):
    """The payment's outcome is not known yet; retry with the same idempotency key later."""
    code = 1963


class AlreadyPaying(ClientError):
    """The invoice is already paid, or being paid, under another idempotency key; it is not paid again."""
    code = 1965


class UnsupportedTarget(ClientError):
    """The thing to pay could not be recognised or decoded (not a bolt11/bolt12 string, URL or mint)."""
    code = 1964


class L402Error(ClientError):
    """An L402 server is unreachable, answered without a usable challenge, or refused the token."""
    code = 1970


class MintError(ClientError):
    """A Cashu mint is unreachable, slow, refused a request, or answered something that does not verify."""
    code = 1975


class CashuTokenError(ClientError):
    """A Cashu token string is malformed, from an untrusted mint, or already spent."""
    code = 1976


class InsufficientFunds(ClientError):
    """The Cashu wallet does not hold enough unspent proofs at that mint."""
    code = 1977


class ReceiptError(ClientError):
    """A management receipt could not be signed by the node."""
    code = 1980


class MarketplaceError(ClientError):
    """A marketplace event or message is malformed, or a marketplace action is not possible in its state."""
    code = 1985


class TransportUnavailable(ClientError):
    """The Nostr transport is not running (not configured, or not started yet)."""
    code = 1986
    environmental = True
