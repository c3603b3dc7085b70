BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'cl-hive','m001_hive_meta','2026-12-06 04:01:25.078097+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'cl-hive','m002_members','2026-12-06 04:01:25.079755+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'cl-hive','m003_protocol','2026-12-06 04:01:25.081168+00:00');
INSERT INTO "_sqlite_migrations" VALUES(4,'cl-hive','m004_promotion_and_bans','2026-12-06 04:01:25.099427+00:00');
INSERT INTO "_sqlite_migrations" VALUES(5,'cl-hive','m005_admissions','2026-12-06 04:01:25.100428+00:00');
INSERT INTO "_sqlite_migrations" VALUES(6,'cl-hive','m006_hive_fleet_state','2026-12-06 04:01:25.117856+00:00');
INSERT INTO "_sqlite_migrations" VALUES(7,'cl-hive','m007_hive_intents','2026-12-06 04:01:25.126769+00:00');
INSERT INTO "_sqlite_migrations" VALUES(8,'cl-hive','m100_hive_governance','2026-12-06 04:01:25.128378+00:00');
INSERT INTO "_sqlite_migrations" VALUES(9,'cl-hive','m101_hive_budget_spend','2026-12-06 04:01:25.146031+00:00');
INSERT INTO "_sqlite_migrations" VALUES(10,'cl-hive','m102_hive_audit_log','2026-12-06 04:01:25.147465+00:00');
INSERT INTO "_sqlite_migrations" VALUES(11,'cl-hive','m103_hive_saved_fee_policies','2026-12-06 04:01:25.148697+00:00');
INSERT INTO "_sqlite_migrations" VALUES(12,'cl-hive','m104_hive_revenue_ops','2026-12-06 04:01:25.163208+00:00');
INSERT INTO "_sqlite_migrations" VALUES(13,'cl-hive','m105_hive_revenue_ops_policies','2026-12-06 04:01:25.164491+00:00');
CREATE TABLE "hive_admissions" (
   "node_id" TEXT PRIMARY KEY,
   "admitted_by" TEXT,
   "joined_at" INTEGER,
   "signature" TEXT
);
INSERT INTO "hive_admissions" VALUES('033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a','038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b',1796529686,'rn8pxrxt3owu86jh4grrz3w7paxrmijmskm1odkqw4tz8cfj8nn4g9d669k55u5rhq8neezafdzhuir5k8zuwrhj831oa5opyhd6koj6');
CREATE TABLE "hive_audit_log" (
   "id" INTEGER PRIMARY KEY,
   "ts" INTEGER NOT NULL,
   "actor" TEXT NOT NULL,
   "event" TEXT NOT NULL,
   "action_id" INTEGER,
   "subject" TEXT,
   "details" TEXT
);
INSERT INTO "hive_audit_log" VALUES(1,1796529686,'rpc:hive-propose-action','proposed',1,'channel_open','{"payload":{"amount_sats":100000,"announce":true,"target":"033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a"},"reason":"drill"}');
CREATE TABLE "hive_ban_proposals" (
   "proposal_id" TEXT PRIMARY KEY,
   "target" TEXT,
   "proposer" TEXT,
   "reason" TEXT,
   "timestamp" INTEGER,
   "expires_at" INTEGER,
   "status" TEXT,
   "proposal_type" TEXT,
   "signature" TEXT
);
CREATE TABLE "hive_ban_votes" (
   "proposal_id" TEXT,
   "voter" TEXT,
   "vote" TEXT,
   "timestamp" INTEGER,
   "signature" TEXT,
   PRIMARY KEY ("proposal_id", "voter")
);
CREATE TABLE "hive_bans" (
   "node_id" TEXT PRIMARY KEY,
   "reason" TEXT,
   "banned_at" INTEGER,
   "proposal_id" TEXT
);
CREATE TABLE "hive_budget_spend" (
   "id" INTEGER PRIMARY KEY,
   "day" TEXT NOT NULL,
   "action_id" INTEGER,
   "action_type" TEXT NOT NULL,
   "amount_sats" INTEGER NOT NULL,
   "target" TEXT,
   "status" TEXT NOT NULL,
   "txid" TEXT,
   "channel_id" TEXT,
   "created_at" INTEGER,
   "updated_at" INTEGER
);
CREATE TABLE "hive_fleet_state" (
   "peer_id" TEXT PRIMARY KEY,
   "capacity_sats" INTEGER,
   "available_sats" INTEGER,
   "fee_policy" TEXT,
   "topology" TEXT,
   "version" INTEGER NOT NULL,
   "last_update" INTEGER NOT NULL,
   "state_hash" TEXT,
   "addresses" TEXT,
   "capabilities" TEXT,
   "budget_available_sats" INTEGER,
   "budget_reserved_until" INTEGER,
   "budget_last_update" INTEGER,
   "signature" TEXT,
   "signed_fleet_hash" TEXT,
   "source" TEXT,
   "received_from" TEXT,
   "received_at" INTEGER
);
INSERT INTO "hive_fleet_state" VALUES('038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b',0,0,'{"base_fee": 0, "fee_rate": 0, "min_htlc": 0, "max_htlc": 0, "cltv_delta": 40}','[]',1,1796529686,'4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945','[]','[]',0,0,0,'rdoz5p5apsukxtsae3c9c19pactw17ibuupcgp47ijuymazhoqphhfm8etcxb5p4t1gwzwhmzfy9c5y34bccrw8thg954nakm9ujtfsg','','local','038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b',1796529686);
INSERT INTO "hive_fleet_state" VALUES('033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a',0,0,'{"base_fee": 0, "fee_rate": 0, "min_htlc": 0, "max_htlc": 0, "cltv_delta": 40}','[]',1,1796529686,'cfa57d75918da1dc9a8c3b39218d38121936eb686c781ce48ca102702829776e','[]','[]',0,0,0,'d7x5iacbe55zpjfxusgnyxrosnniwm884cc39q55uzjo6yc6jouc4yo8yceybuj9pb85tesp851zqafbo44tbtn3cmu6pjh7h96y97th','','gossip','033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a',1796529686);
CREATE TABLE "hive_governance_state" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
CREATE TABLE "hive_intents" (
   "id" INTEGER PRIMARY KEY,
   "intent_type" TEXT NOT NULL,
   "target" TEXT NOT NULL,
   "initiator" TEXT NOT NULL,
   "timestamp" INTEGER NOT NULL,
   "expires_at" INTEGER NOT NULL,
   "amount_sats" INTEGER,
   "signature" TEXT,
   "status" TEXT NOT NULL,
   "reason" TEXT,
   "outcome" TEXT,
   "decided_at" INTEGER
);
CREATE TABLE "hive_invite_uses" (
   "ticket_id" TEXT,
   "node_id" TEXT,
   "used_at" INTEGER,
   PRIMARY KEY ("ticket_id", "node_id")
);
INSERT INTO "hive_invite_uses" VALUES('124b4edaf2694e2ff8f38f08d34c0c97','033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a',1796529686);
CREATE TABLE "hive_invites" (
   "ticket_id" TEXT PRIMARY KEY,
   "ticket" TEXT,
   "issued_at" INTEGER,
   "expires_at" INTEGER,
   "max_uses" INTEGER,
   "uses" INTEGER
);
INSERT INTO "hive_invites" VALUES('124b4edaf2694e2ff8f38f08d34c0c97','eyJhZG1pbl9wdWJrZXkiOiAiMDM4MTk0YjVmMzJiZGYwYWE1OTgxMmM4NmM0ZWY3YWQyZjI5NDEwNGZhMDI3ZDFhY2U5YjQ2OWJiNmY4OGNmMzdiIiwgImhpdmVfaWQiOiAib3BzLWRyaWxsIiwgInJlcXVpcmVtZW50cyI6IDAsICJpc3N1ZWRfYXQiOiAxNzk2NTI5Njg2LCAiZXhwaXJlc19hdCI6IDE3OTY2MTYwODYsICJpbml0aWFsX3RpZXIiOiAibmVvcGh5dGUiLCAic2lnbmF0dXJlIjogImRodHdkbXNkcHVzaTF5eTg5aXJxYzYzaGJwcjU3czRodXpwN2c2ZnBxODZpcXMxa2M2b2Nobm1weDcxMXppdXozb2J4cTVpb2Nma2RkZnlxOGhyeG9mamg0aHk0N2pqOHpvNGhpeGV3In0=',1796529686,1796616086,2,1);
CREATE TABLE "hive_members" (
   "node_id" TEXT PRIMARY KEY,
   "tier" TEXT,
   "joined_at" INTEGER,
   "promoted_at" INTEGER,
   "addresses" TEXT,
   "last_seen" INTEGER,
   "via" TEXT
);
INSERT INTO "hive_members" VALUES('038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b','member',1796529686,1796529686,'[]',1796529686,'genesis');
INSERT INTO "hive_members" VALUES('033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a','neophyte',1796529686,NULL,'[]',1796529686,'invite:124b4edaf2694e2ff8f38f08d34c0c97');
CREATE TABLE "hive_meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
INSERT INTO "hive_meta" VALUES('hive_id','ops-drill',1796529686);
CREATE TABLE "hive_outbox" (
   "msg_id" TEXT,
   "peer_id" TEXT,
   "msg_type" INTEGER,
   "payload" TEXT,
   "created_at" INTEGER,
   "next_attempt_at" INTEGER,
   "attempts" INTEGER,
   "status" TEXT,
   "last_error" TEXT,
   "acked_at" INTEGER,
   PRIMARY KEY ("msg_id", "peer_id")
);
CREATE TABLE "hive_own_reports" (
   "kind" TEXT PRIMARY KEY,
   "report" TEXT,
   "updated_at" INTEGER
);
CREATE TABLE "hive_peer_events" (
   "id" INTEGER PRIMARY KEY,
   "peer_id" TEXT NOT NULL,
   "event_type" TEXT NOT NULL,
   "channel_id" TEXT,
   "reported_at" INTEGER NOT NULL,
   "details" TEXT
);
CREATE TABLE "hive_pending_actions" (
   "id" INTEGER PRIMARY KEY,
   "action_type" TEXT NOT NULL,
   "payload" TEXT NOT NULL,
   "reason" TEXT,
   "source" TEXT,
   "status" TEXT NOT NULL,
   "proposed_at" INTEGER NOT NULL,
   "expires_at" INTEGER NOT NULL,
   "decided_at" INTEGER,
   "decided_by" TEXT,
   "rejection_reason" TEXT,
   "executed_at" INTEGER,
   "amount_override" INTEGER,
   "result" TEXT,
   "error" TEXT,
   "last_error" TEXT,
   "attempts" INTEGER DEFAULT 0
);
INSERT INTO "hive_pending_actions" VALUES(1,'channel_open','{"amount_sats":100000,"announce":true,"target":"033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a"}','drill','rpc:hive-propose-action','pending',1796529686,1796616086,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,0);
CREATE TABLE "hive_period_costs" (
   "period" TEXT PRIMARY KEY,
   "rebalance_costs_sats" INTEGER,
   "updated_at" INTEGER
);
INSERT INTO "hive_period_costs" VALUES('2026-W49',1234,1796529686);
CREATE TABLE "hive_promotion_requests" (
   "target" TEXT,
   "request_id" TEXT,
   "created_at" INTEGER,
   "status" TEXT,
   PRIMARY KEY ("target", "request_id")
);
CREATE TABLE "hive_revenue_ops_policies" (
   "peer_id" TEXT PRIMARY KEY,
   "strategy" TEXT,
   "previous" TEXT,
   "claimed_at" INTEGER
);
CREATE TABLE "hive_saved_fee_policies" (
   "channel_id" TEXT PRIMARY KEY,
   "peer_id" TEXT NOT NULL,
   "short_channel_id" TEXT,
   "saved_base_msat" INTEGER NOT NULL,
   "saved_ppm" INTEGER NOT NULL,
   "saved_at" INTEGER,
   "applied_policy" TEXT,
   "applied_base_msat" INTEGER,
   "applied_ppm" INTEGER,
   "applied_at" INTEGER
);
CREATE TABLE "hive_seen" (
   "msg_id" TEXT PRIMARY KEY,
   "msg_type" INTEGER,
   "sender" TEXT,
   "seen_at" INTEGER
);
CREATE TABLE "hive_vouches" (
   "target" TEXT,
   "request_id" TEXT,
   "voucher" TEXT,
   "timestamp" INTEGER,
   "sig" TEXT,
   PRIMARY KEY ("target", "request_id", "voucher")
);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX "idx_hive_seen_seen_at"
    ON "hive_seen" ("seen_at");
CREATE INDEX "idx_hive_outbox_status_next_attempt_at"
    ON "hive_outbox" ("status", "next_attempt_at");
CREATE INDEX "idx_hive_intents_status"
    ON "hive_intents" ("status");
CREATE INDEX "idx_hive_intents_intent_type_target"
    ON "hive_intents" ("intent_type", "target");
CREATE INDEX "idx_hive_pending_actions_status_expires_at"
    ON "hive_pending_actions" ("status", "expires_at");
CREATE INDEX "idx_hive_pending_actions_decided_by_decided_at"
    ON "hive_pending_actions" ("decided_by", "decided_at");
CREATE INDEX "idx_hive_budget_spend_day_status"
    ON "hive_budget_spend" ("day", "status");
CREATE INDEX "idx_hive_audit_log_ts"
    ON "hive_audit_log" ("ts");
CREATE INDEX "idx_hive_audit_log_action_id"
    ON "hive_audit_log" ("action_id");
CREATE INDEX "idx_hive_saved_fee_policies_peer_id"
    ON "hive_saved_fee_policies" ("peer_id");
CREATE INDEX "idx_hive_peer_events_peer_id_reported_at"
    ON "hive_peer_events" ("peer_id", "reported_at");
COMMIT;
