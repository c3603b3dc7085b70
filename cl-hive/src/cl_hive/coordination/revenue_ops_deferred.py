"""cl-revenue-ops' ``hive-*`` methods whose data belongs to long-tail features this version does not implement
(fee intelligence, NNLB health, splice coordination, yield metrics, anticipatory liquidity, fee coordination,
cost reduction and MCF, Physarum positioning, peer quality).

Each answers with upstream's documented result shape and empty or neutral data: the values upstream itself returns
when it has no data (``"error": "no_data"``, ``"status": "no_forecast"``, zero counts, empty lists, a fee
recommendation equal to the current fee with confidence 0, "safe" for a splice with no fleet data, neutral health
50/"stable"/1.0).  Reports are validated and acknowledged as ``"status": "ignored"`` (nothing is stored or
shared).  Every result carries ``"implemented": false`` and a ``note`` naming the missing feature, so neither an
operator nor cl-revenue-ops can mistake it for fleet data.  Parameters are validated like any other method.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Literal

from pydantic import Field

from libhive.rpcparams import InvalidParams, Params

from .common import expose, node_id_field



def optional_channel() -> Any:
    return Field(None, max_length=100)


def deferred(feature: str, **fields: Any) -> dict[str, Any]:
    return {**fields, "implemented": False,
            "note": f"{feature} is not implemented in this cl-hive version: no data (see docs/governance.md)"}


def _clock() -> dict[str, Any]:
    t = datetime.now(timezone.utc)
    return {"current_hour": t.hour, "current_day": t.weekday(), "current_day_name": t.strftime("%a")}


# ---- parameters (upstream order first, then what cl-revenue-ops also sends) ------------------------------
class MemberHealth(Params):
    member_id: str | None = Field(None, pattern=r"^(all|0[23][0-9a-f]{64})$")
    action: Literal["query", "aggregate"] = "query"


class HealthReport(Params):
    profitable_channels: int = Field(0, ge=0)
    underwater_channels: int = Field(0, ge=0)
    stagnant_channels: int = Field(0, ge=0)
    total_channels: int | None = Field(None, ge=0)
    revenue_trend: str = Field("stable", max_length=20)
    liquidity_score: int = 50


class PeerOnly(Params):
    peer_id: str = node_id_field()


class OptionalPeer(Params):
    peer_id: str | None = node_id_field(None)


class SpliceCheck(Params):
    peer_id: str = node_id_field()
    splice_type: Literal["splice_in", "splice_out"]
    amount_sats: int = Field(ge=0)
    channel_id: str | None = optional_channel()


class PeriodDays(Params):
    period_days: int = Field(30, ge=1, le=365)


class VelocityPrediction(Params):
    channel_id: str = Field(max_length=100)
    hours: int = Field(24, ge=1, le=24 * 30)


class CriticalVelocity(Params):
    threshold_hours: int | None = Field(None, ge=1, le=24 * 30)
    hours_threshold: int | None = Field(None, ge=1, le=24 * 30)     # what cl-revenue-ops sends


class NoParams(Params):
    pass


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


class ScidOnly(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")


class FeeChangeOutcomes(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")
    days: int = Field(30, ge=1, le=90)


class NnlbOpportunities(Params):
    min_amount: int = Field(50_000, ge=0)


# ---- results --------------------------------------------------------------------------------------------
FEE_INTEL, HEALTH, LIQ = "fee intelligence sharing", "NNLB health tracking", "fleet liquidity coordination"
SPLICE, YIELD, ANTIC = "splice coordination", "yield metrics", "anticipatory liquidity"
FEECO, COST, MCF = "fee coordination (corridors, pheromones, defense)", "fleet rebalance routing", "MCF optimisation"
PHYS, QUALITY = "Physarum strategic positioning", "peer quality scoring"
NO_PATH = {"fleet_path_available": False, "fleet_path": [], "estimated_fleet_cost_sats": None,
           "estimated_external_cost_sats": None, "savings_pct": 0, "recommendation": "use_external_path"}


def member_health(p: MemberHealth, our_id: Callable[[], str | None]) -> dict[str, Any]:
    if p.member_id == "all" or p.action == "aggregate":
        return deferred(HEALTH, fleet_health=50, member_count=0, struggling_count=0, vulnerable_count=0,
                        stable_count=0, thriving_count=0, members=[])
    return deferred(HEALTH, member_id=p.member_id or our_id(), error="No health record found", health_score=50,
                    health_tier="stable", budget_multiplier=1.0)


def splice_check(p: SpliceCheck) -> dict[str, Any]:
    if p.splice_type == "splice_in":
        return deferred(SPLICE, safety="safe", reason="Splice-in always safe (increases capacity)",
                        can_proceed=True, amount_sats=p.amount_sats)
    return deferred(SPLICE, safety="safe", reason="No fleet capacity data, local decision", can_proceed=True,
                    fleet_capacity=None, new_fleet_capacity=None, fleet_share=None, new_share=None)


def pheromone_levels(p: PheromoneLevels) -> dict[str, Any]:
    if p.action == "update":
        return deferred(FEECO, status="ignored", channel_id=p.channel_id)
    if p.channel_id:
        return deferred(FEECO, channel_id=p.channel_id, pheromone_level=0.0, above_exploit_threshold=False,
                        pheromone_levels=[{"channel_id": p.channel_id, "level": 0.0, "above_threshold": False}])
    return deferred(FEECO, total_channels=0, channels_above_threshold=0, levels=[], pheromone_levels=[])


def mcf_status(our_id: Callable[[], str | None]) -> dict[str, Any]:
    return deferred(MCF, enabled=False, is_coordinator=False, coordinator_id=None, our_pubkey=our_id(),
                    pending_assignments={"count": 0, "assignments": []},
                    solution_info={"valid": False, "last_timestamp": 0, "total_flow_sats": 0, "total_cost_sats": 0,
                                   "assignment_count": 0},
                    ack_stats={"count": 0, "recent": []},
                    completion_stats={"total": 0, "success": 0, "failure": 0, "recent": []})


def register(hive: Any, members: Any) -> None:
    our_id: Callable[[], str | None] = lambda: hive.node_id  # noqa: E731
    rpc: Callable[[], Any] = lambda: hive.rpc  # noqa: E731
    simple: list[tuple[str, type[Params], str, Callable[[Any], dict[str, Any]]]] = [
        ("hive-splice-check", SpliceCheck, "Is a splice safe for fleet connectivity?", splice_check),
        ("hive-splice-recommendations", PeerOnly, "Fleet connectivity to a peer and safe splice-out amounts.",
         lambda p: deferred(SPLICE, peer_id=p.peer_id, fleet_capacity=None, our_capacity=None,
                            other_member_capacity=None, peer_total_capacity=None, fleet_share=None,
                            safe_splice_out_amount=None, has_fleet_coverage=False, recommendations=[])),
        ("hive-yield-summary", PeriodDays, "Fleet yield summary [period_days].",
         lambda p: deferred(YIELD, status="no_data", total_capacity_sats=0, total_revenue_sats=0,
                            total_costs_sats=0, total_net_revenue_sats=0, avg_roi_pct=0.0, avg_turn_rate=0.0,
                            avg_capital_efficiency=0.0, total_channels=0, profitable_channels=0,
                            underwater_channels=0, high_flow_channels=0, low_flow_channels=0,
                            internal_competition_count=0, estimated_competition_loss_sats=0,
                            period_days=p.period_days)),
        ("hive-velocity-prediction", VelocityPrediction, "Predicted channel balance from flow velocity.",
         lambda p: deferred(YIELD, error="insufficient_data", channel_id=p.channel_id,
                            message="Insufficient data for prediction")),
        ("hive-critical-velocity", CriticalVelocity, "Channels depleting or filling fast [threshold_hours].",
         lambda p: deferred(YIELD, status="ok", threshold_hours=p.threshold_hours or p.hours_threshold or 24,
                            critical_count=0, channels=[])),
        ("hive-report-kalman-velocity", KalmanReport, "cl-revenue-ops: a Kalman velocity estimate (not collected).",
         lambda p: deferred(ANTIC, status="ignored", channel_id=p.channel_id,
                            velocity_pct_per_hour=p.velocity_pct_per_hour, acknowledged=False)),
        ("hive-query-kalman-velocity", ChannelOnly, "Fleet Kalman velocity for a channel.",
         lambda p: deferred(ANTIC, status="no_data", channel_id=p.channel_id,
                            message="No Kalman velocity data available for this channel")),
        ("hive-detect-patterns", OptionalChannel, "Intra-day flow patterns of a channel.",
         lambda p: deferred(ANTIC, status="ok", channel_id=p.channel_id, pattern_count=0, actionable_count=0,
                            patterns=[])),
        ("hive-predict-liquidity", PredictLiquidity, "Intra-day liquidity forecast of a channel.",
         lambda p: deferred(ANTIC, status="no_forecast", channel_id=p.channel_id,
                            message="Insufficient data for forecast")),
        ("hive-anticipatory-predictions", AnticipatoryPredictions, "At-risk channels from intra-day patterns.",
         lambda p: deferred(ANTIC, status="ok", channel_id=p.channel_id, hours_ahead=p.hours_ahead,
                            min_risk=p.min_risk, predictions=[], channels=[])),
        ("hive-record-flow", RecordFlow, "cl-revenue-ops: a flow sample (not collected).",
         lambda p: deferred(ANTIC, status="ignored", channel_id=p.channel_id,
                            net_flow=p.inbound_sats - p.outbound_sats)),
        ("hive-deposit-marker", DepositMarker, "cl-revenue-ops: a routing outcome marker (not collected).",
         lambda p: deferred(FEECO, status="ignored", marker=None)),
        ("hive-pheromone-levels", PheromoneLevels, "Pheromone levels of channels [channel_id].", pheromone_levels),
        ("hive-fee-coordination-status", NoParams, "Fee coordination overview.",
         lambda p: deferred(FEECO, corridor_assignments=0, active_markers=0, defense_status={"active_warnings": 0},
                            pheromone_channels=0, fleet_fee_floor=None, fleet_fee_ceiling=None,
                            time_based_fees={"enabled": False}, assignments=[], recent_markers=[],
                            our_corridors={"primary": 0, "secondary": 0})),
        ("hive-time-fee-status", NoParams, "Time-of-day fee adjustments.",
         lambda p: deferred(FEECO, enabled=False, **_clock(), active_adjustments=0, adjustments=[], config={})),
        ("hive-time-fee-adjustment", TimeFeeAdjustment, "Time-of-day fee adjustment for a channel.",
         lambda p: deferred(FEECO, channel_id=p.channel_id, base_fee_ppm=p.base_fee, adjusted_fee_ppm=p.base_fee,
                            adjustment_pct=0.0, adjustment_type="none", **_clock(), pattern_intensity=0.0,
                            confidence=0.0, reason="no temporal pattern data")),
        ("hive-time-peak-hours", ChannelOnly, "Peak routing hours of a channel.",
         lambda p: deferred(FEECO, channel_id=p.channel_id, peak_hours=[], count=0)),
        ("hive-mcf-status", NoParams, "MCF optimiser status.", lambda p: mcf_status(our_id)),
        ("hive-mcf-assignments", NoParams, "Our MCF rebalance assignments.",
         lambda p: deferred(MCF, last_solution_timestamp=0, ack_sent=False,
                            summary={"pending": 0, "executing": 0, "completed": 0, "failed": 0},
                            pending=[], executing=[], completed=[], failed=[])),
        ("hive-mcf-optimized-path", RebalancePath, "MCF-optimised rebalance path between two channels.",
         lambda p: deferred(MCF, source=None, **NO_PATH)),
        ("hive-report-mcf-completion", McfCompletion, "cl-revenue-ops: an MCF assignment finished.",
         lambda p: deferred(MCF, success=False, error=f"Assignment {p.assignment_id} not found")),
        ("hive-claim-mcf-assignment", McfClaim, "Claim an MCF assignment for execution.",
         lambda p: deferred(MCF, success=False, error=f"Assignment {p.assignment_id} not found or not pending"
                            if p.assignment_id else "No pending assignments")),
        ("hive-flow-recommendations", OptionalChannel, "Physarum channel lifecycle recommendations.",
         lambda p: deferred(PHYS, recommendations=[], count=0,
                            by_action={"strengthen": 0, "stimulate": 0, "atrophy": 0, "hold": 0},
                            summary={"strengthen_count": 0, "maintain_count": 0, "stimulate_count": 0,
                                     "atrophy_count": 0},
                            capital_to_redeploy_sats=0, recommended_splice_sats=0)),
        ("hive-report-flow-intensity", FlowIntensity, "cl-revenue-ops: a channel's flow intensity (not collected).",
         lambda p: deferred(PHYS, status="ignored", channel_id=p.channel_id)),
        ("hive-get-peer-quality", OptionalPeer, "Peer quality assessments.",
         lambda p: deferred(QUALITY, peers={})),
        ("hive-get-fee-change-outcomes", FeeChangeOutcomes, "Outcomes of past fee changes.",
         lambda p: deferred(FEECO, changes=[])),
        ("hive-get-mcf-targets", NoParams, "MCF balance targets per channel.",
         lambda p: deferred(MCF, targets={}, computed_at=0)),
    ]
    for name, model, description, handler in simple:
        expose(hive, name, model, f"{description} [no data in this version]")(handler)


__all__ = ["deferred", "register"]
