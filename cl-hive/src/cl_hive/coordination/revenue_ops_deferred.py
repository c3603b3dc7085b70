"""cl-revenue-ops' ``hive-*`` methods whose data belongs to long-tail features this version does not implement:
Kalman velocity and intra-day patterns (anticipatory liquidity), yield metrics, pheromones and stigmergic markers,
time-of-day fees, the fleet min-cost-flow solver (MCF), Physarum positioning, peer quality scores and fee-change
outcomes.  docs/coordination.md lists each with the reason.

Every one validates its parameters like any other method (-32602 on bad input) and answers with a *result* that
says so: ``{"error": "not_implemented", "feature": ..., "reason": ...}`` plus the identifiers it was asked about.
No neutral values, no empty lists presented as data, no "ignored" acknowledgements: cl-revenue-ops reads a result
``error`` as "no hive input" (none of these trip its circuit breaker) and keeps its local behaviour.  Reports sent
to these methods are not stored.
"""
from __future__ import annotations

from typing import Any, Literal

from libhive.models import Field

from libhive.rpcparams import Params

from .common import NoParams, expose

ANTICIPATORY = ("anticipatory liquidity (Kalman velocity, intra-day flow patterns)",
                "needs per-channel flow time series aggregated across members; this version keeps none")
YIELD = ("yield metrics", "needs per-channel revenue and cost history across members; this version keeps none")
PHEROMONES = ("pheromones and stigmergic markers", "swarm-style fee learning is not implemented; fee coordination "
              "here is hive-coord-fee-recommendation (warnings and competing members)")
TIME_FEES = ("time-of-day fees", "needs hourly flow patterns this version does not collect")
MCF = ("fleet min-cost-flow optimisation (MCF)", "no fleet-wide solver runs in this version; for routes through the "
       "members use hive-fleet-rebalance-path")
PHYSARUM = ("Physarum strategic positioning", "not implemented; channel opens come from the planner (hive-topology)")
QUALITY = ("peer quality scores", "scoring outside peers from members' channel events is not implemented")
FEE_OUTCOMES = ("fee-change outcomes", "this version does not record fee changes and their effect")


def optional_channel() -> Any:
    return Field(None, max_length=100)


def not_implemented(feature: tuple[str, str], **asked: Any) -> dict[str, Any]:
    name, why = feature
    return {**{k: v for k, v in asked.items() if v is not None}, "error": "not_implemented", "feature": name,
            "reason": f"{name}: {why} (see docs/coordination.md)"}


# ---- parameters (upstream order first, then what cl-revenue-ops also sends) ------------------------------
class OptionalPeer(Params):
    peer_id: str | None = Field(None, pattern=r"^0[23][0-9a-f]{64}$")


class PeriodDays(Params):
    period_days: int = Field(30, ge=1, le=365)


class VelocityPrediction(Params):
    channel_id: str = Field(max_length=100)
    hours: int = Field(24, ge=1, le=24 * 30)


class CriticalVelocity(Params):
    threshold_hours: int | None = Field(None, ge=1, le=24 * 30)
    hours_threshold: int | None = Field(None, ge=1, le=24 * 30)     # what cl-revenue-ops sends


class KalmanReport(Params):
    channel_id: str = Field("", max_length=100)
    peer_id: str = Field("", max_length=66)
    velocity_pct_per_hour: float = 0.0
    uncertainty: float = Field(0.0, ge=0)
    flow_ratio: float = Field(0.0, ge=-1, le=1)
    confidence: float = Field(0.0, ge=0, le=1)
    is_regime_change: bool = False


class ChannelOnly(Params):
    channel_id: str = Field(max_length=100)


class OptionalChannel(Params):
    channel_id: str | None = optional_channel()


class PredictLiquidity(Params):
    channel_id: str = Field(max_length=100)
    current_local_pct: float = Field(0.5, ge=0, le=1)
    hours_ahead: int = Field(12, ge=1, le=24 * 7)


class AnticipatoryPredictions(Params):
    channel_id: str | None = optional_channel()
    hours_ahead: int = Field(12, ge=1, le=24 * 7)
    min_risk: float = Field(0.3, ge=0, le=1)


class RecordFlow(Params):
    channel_id: str = Field(max_length=100)
    inbound_sats: int = Field(ge=0)
    outbound_sats: int = Field(ge=0)
    timestamp: int | None = Field(None, ge=0)


class DepositMarker(Params):
    source: str = Field(max_length=66)
    destination: str = Field(max_length=66)
    fee_ppm: int = Field(ge=0, le=50_000)
    success: bool
    volume_sats: int = Field(0, ge=0)
    channel_id: str | None = optional_channel()
    peer_id: str | None = Field(None, max_length=66)
    amount_sats: int = Field(0, ge=0)


class PheromoneLevels(Params):
    channel_id: str | None = optional_channel()
    action: Literal["query", "update"] | None = None                 # cl-revenue-ops' routing-outcome report
    fee_ppm: int | None = Field(None, ge=0)
    success: bool | None = None
    amount_sats: int | None = Field(None, ge=0)


class TimeFeeAdjustment(Params):
    channel_id: str = Field(max_length=100)
    base_fee: int = Field(250, ge=0)


class RebalancePath(Params):
    from_channel: str = Field(max_length=100)
    to_channel: str = Field(max_length=100)
    amount_sats: int = Field(ge=1)


class McfCompletion(Params):
    assignment_id: str = Field("", max_length=100)
    success: bool = False
    actual_amount_sats: int = Field(0, ge=0)
    actual_cost_sats: int = Field(0, ge=0)
    failure_reason: str = Field("", max_length=500)


class McfClaim(Params):
    assignment_id: str | None = Field(None, max_length=100)


class FlowIntensity(Params):
    channel_id: str = Field("", max_length=100)
    peer_id: str = Field("", max_length=66)
    intensity: float | None = Field(None, ge=0, le=100)
    capacity_sats: int | None = Field(None, ge=0)                    # cl-revenue-ops sends the raw metrics
    volume_7d_sats: int | None = Field(None, ge=0)
    revenue_7d_sats: int | None = Field(None, ge=0)
    forward_count_7d: int | None = Field(None, ge=0)


class FeeChangeOutcomes(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")
    days: int = Field(30, ge=1, le=90)


class ScidQuery(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")


# (method, parameters, feature, description, the parameters echoed back)
DEFERRED: list[tuple[str, type[Params], tuple[str, str], str, tuple[str, ...]]] = [
    ("hive-yield-summary", PeriodDays, YIELD, "Fleet yield summary [period_days].", ("period_days",)),
    ("hive-velocity-prediction", VelocityPrediction, ANTICIPATORY, "Predicted channel balance from flow velocity.",
     ("channel_id",)),
    ("hive-critical-velocity", CriticalVelocity, ANTICIPATORY, "Channels depleting or filling fast.", ()),
    ("hive-report-kalman-velocity", KalmanReport, ANTICIPATORY, "cl-revenue-ops: a Kalman velocity estimate.",
     ("channel_id",)),
    ("hive-query-kalman-velocity", ChannelOnly, ANTICIPATORY, "Fleet Kalman velocity for a channel.",
     ("channel_id",)),
    ("hive-detect-patterns", OptionalChannel, ANTICIPATORY, "Intra-day flow patterns of a channel.", ("channel_id",)),
    ("hive-predict-liquidity", PredictLiquidity, ANTICIPATORY, "Intra-day liquidity forecast of a channel.",
     ("channel_id",)),
    ("hive-anticipatory-predictions", AnticipatoryPredictions, ANTICIPATORY, "At-risk channels from intra-day "
     "patterns.", ("channel_id",)),
    ("hive-record-flow", RecordFlow, ANTICIPATORY, "cl-revenue-ops: a flow sample.", ("channel_id",)),
    ("hive-deposit-marker", DepositMarker, PHEROMONES, "cl-revenue-ops: a routing outcome marker.", ("channel_id",)),
    ("hive-pheromone-levels", PheromoneLevels, PHEROMONES, "Pheromone levels of channels [channel_id].",
     ("channel_id",)),
    ("hive-time-fee-status", NoParams, TIME_FEES, "Time-of-day fee adjustments.", ()),
    ("hive-time-fee-adjustment", TimeFeeAdjustment, TIME_FEES, "Time-of-day fee adjustment for a channel.",
     ("channel_id",)),
    ("hive-time-peak-hours", ChannelOnly, TIME_FEES, "Peak routing hours of a channel.", ("channel_id",)),
    ("hive-mcf-status", NoParams, MCF, "MCF optimiser status.", ()),
    ("hive-mcf-assignments", NoParams, MCF, "Our MCF rebalance assignments.", ()),
    ("hive-mcf-optimized-path", RebalancePath, MCF, "MCF-optimised rebalance path between two channels.",
     ("from_channel", "to_channel")),
    ("hive-report-mcf-completion", McfCompletion, MCF, "cl-revenue-ops: an MCF assignment finished.",
     ("assignment_id",)),
    ("hive-claim-mcf-assignment", McfClaim, MCF, "Claim an MCF assignment for execution.", ("assignment_id",)),
    ("hive-get-mcf-targets", NoParams, MCF, "MCF balance targets per channel.", ()),
    ("hive-flow-recommendations", OptionalChannel, PHYSARUM, "Physarum channel lifecycle recommendations.",
     ("channel_id",)),
    ("hive-report-flow-intensity", FlowIntensity, PHYSARUM, "cl-revenue-ops: a channel's flow intensity.",
     ("channel_id",)),
    ("hive-get-peer-quality", OptionalPeer, QUALITY, "Peer quality assessments.", ("peer_id",)),
    ("hive-get-fee-change-outcomes", FeeChangeOutcomes, FEE_OUTCOMES, "Outcomes of past fee changes.", ("scid",)),
]


def register(hive: Any) -> None:
    for name, model, feature, description, echo in DEFERRED:
        def handler(p: Params, feature: tuple[str, str] = feature, echo: tuple[str, ...] = echo) -> dict[str, Any]:
            return not_implemented(feature, **{k: getattr(p, k) for k in echo})
        expose(hive, name, model, f"{description} [not implemented in this version: answers error "
               f"\"not_implemented\" with the reason]")(handler)


__all__ = ["DEFERRED", "not_implemented", "register"]
