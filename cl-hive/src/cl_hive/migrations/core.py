"""cl-hive's base tables: node metadata, the roster (members, bans, invites), the protocol's dedup records and
durable outbox, promotion requests, vouches, ban proposals and votes, admission certificates.
"""
from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m001_hive_meta(db):
    db["hive_meta"].create({"key": str, "value": str, "updated_at": int}, pk="key")


@migrations()
def m002_members(db):
    db["hive_members"].create({"node_id": str, "tier": str, "joined_at": int, "promoted_at": int,
                               "addresses": str, "last_seen": int, "via": str}, pk="node_id")
    db["hive_bans"].create({"node_id": str, "reason": str, "banned_at": int, "proposal_id": str}, pk="node_id")
    db["hive_invites"].create({"ticket_id": str, "ticket": str, "issued_at": int, "expires_at": int,
                               "max_uses": int, "uses": int}, pk="ticket_id")
    db["hive_invite_uses"].create({"ticket_id": str, "node_id": str, "used_at": int},
                                  pk=("ticket_id", "node_id"))


@migrations()
def m003_protocol(db):
    # dedup of verified messages: written only after a message authenticated and passed membership checks
    db["hive_seen"].create({"msg_id": str, "msg_type": int, "sender": str, "seen_at": int}, pk="msg_id")
    db["hive_seen"].create_index(["seen_at"])
    # durable outbox for state-changing messages
    db["hive_outbox"].create({"msg_id": str, "peer_id": str, "msg_type": int, "payload": str, "created_at": int,
                              "next_attempt_at": int, "attempts": int, "status": str, "last_error": str,
                              "acked_at": int}, pk=("msg_id", "peer_id"))
    db["hive_outbox"].create_index(["status", "next_attempt_at"])


@migrations()
def m004_promotion_and_bans(db):
    db["hive_promotion_requests"].create({"target": str, "request_id": str, "created_at": int, "status": str},
                                         pk=("target", "request_id"))
    db["hive_vouches"].create({"target": str, "request_id": str, "voucher": str, "timestamp": int, "sig": str},
                              pk=("target", "request_id", "voucher"))
    db["hive_ban_proposals"].create({"proposal_id": str, "target": str, "proposer": str, "reason": str,
                                     "timestamp": int, "expires_at": int, "status": str, "proposal_type": str,
                                     "signature": str}, pk="proposal_id")
    db["hive_ban_votes"].create({"proposal_id": str, "voter": str, "vote": str, "timestamp": int,
                                 "signature": str}, pk=("proposal_id", "voter"))


@migrations()
def m005_admissions(db):
    # the signed certificate by which a member admitted each neophyte (see formats.admission_signing)
    db["hive_admissions"].create({"node_id": str, "admitted_by": str, "joined_at": int, "signature": str},
                                 pk="node_id")
