"""Errors of the economics and settlement capabilities: the 22xx family (2200-2299).

==========  ======================================================================================
2201        malformed period (not ``YYYY-WW``, or no such ISO week)
2202        period not completed yet (a future or the current week)
2203        unknown member (not in this node's roster)
2204        unknown proposal or period record
2205        invalid BOLT12 offer (not an offer, fixed amount, or its node is not the member it claims)
2206        this node has no usable settlement offer (lightningd refused to create one)
2207        refused: the test clock works only on regtest
2208        settlement refused: the plan does not match our own recomputation, we did not vote for it, or it
            asks more than our own reported net profit
2209        the period is already settled, or being paid under another proposal
==========  ======================================================================================
"""
from __future__ import annotations

from libhive.errors import HiveError


class SettlementError(HiveError):
    """Base of the 22xx family (never raised itself)."""
    code = 2200


class InvalidPeriod(SettlementError):
    code = 2201


class PeriodNotCompleted(SettlementError):
    code = 2202


class UnknownMember(SettlementError):
    code = 2203


class UnknownProposal(SettlementError):
    code = 2204


class InvalidOffer(SettlementError):
    code = 2205


class NoOffer(SettlementError):
    code = 2206


class ClockRefused(SettlementError):
    code = 2207


class PlanRefused(SettlementError):
    code = 2208


class AlreadySettled(SettlementError):
    code = 2209
