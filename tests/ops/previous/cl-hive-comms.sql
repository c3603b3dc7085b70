BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'cl-hive-comms','m001_nostr_state','2026-12-06 04:01:25.195819+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'cl-hive-comms','m002_comms_transport','2026-12-06 04:01:25.196891+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'cl-hive-comms','m100_advisors_policy_receipts','2026-12-06 04:01:25.198303+00:00');
INSERT INTO "_sqlite_migrations" VALUES(4,'cl-hive-comms','m101_payments','2026-12-06 04:01:25.199243+00:00');
INSERT INTO "_sqlite_migrations" VALUES(5,'cl-hive-comms','m102_cashu','2026-12-06 04:01:25.200411+00:00');
INSERT INTO "_sqlite_migrations" VALUES(6,'cl-hive-comms','m103_marketplace','2026-12-06 04:01:25.202679+00:00');
INSERT INTO "_sqlite_migrations" VALUES(7,'cl-hive-comms','m104_liquidity','2026-12-06 04:01:25.204264+00:00');
CREATE TABLE comms_advisor_nonces (
        pubkey TEXT NOT NULL, nonce TEXT NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY (pubkey, nonce));
CREATE TABLE comms_bindings (
        node_id TEXT PRIMARY KEY, nostr_pubkey TEXT NOT NULL, created INTEGER NOT NULL, event_id TEXT NOT NULL,
        event_json TEXT NOT NULL, fetched_at REAL NOT NULL);
CREATE TABLE comms_cashu_keysets (
        id TEXT PRIMARY KEY, mint_url TEXT NOT NULL, unit TEXT NOT NULL, active INTEGER NOT NULL,
        input_fee_ppk INTEGER NOT NULL DEFAULT 0, keys TEXT NOT NULL, fetched_at INTEGER NOT NULL);
CREATE TABLE comms_cashu_ops (
        op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, mint_url TEXT NOT NULL, state TEXT NOT NULL,
        quote TEXT, detail TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE comms_cashu_outputs (
        b_ TEXT PRIMARY KEY, op_id TEXT NOT NULL, mint_url TEXT NOT NULL, keyset_id TEXT NOT NULL,
        amount INTEGER NOT NULL, secret TEXT NOT NULL, r TEXT NOT NULL, role TEXT NOT NULL,
        created_at INTEGER NOT NULL);
CREATE TABLE comms_cashu_proofs (
        y TEXT PRIMARY KEY, mint_url TEXT NOT NULL, keyset_id TEXT NOT NULL, amount INTEGER NOT NULL,
        secret TEXT NOT NULL, c TEXT NOT NULL, state TEXT NOT NULL, op_id TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE comms_inbox (
        transport TEXT NOT NULL, message_id TEXT NOT NULL, sender TEXT NOT NULL, node_id TEXT,
        kind TEXT NOT NULL, protocol TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
        received_at REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT, PRIMARY KEY (transport, message_id));
CREATE TABLE comms_l402_tokens (
        origin TEXT PRIMARY KEY, macaroon TEXT NOT NULL, preimage TEXT NOT NULL, payment_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL);
CREATE TABLE comms_outbox (
        message_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, transport TEXT NOT NULL,
        recipient TEXT NOT NULL, kind TEXT NOT NULL, body TEXT, event_json TEXT, event_id TEXT, rumor_id TEXT,
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
        last_error TEXT, acked_by TEXT, request_hash TEXT NOT NULL, created_at REAL NOT NULL,
        sent_at REAL, expires_at REAL NOT NULL);
INSERT INTO "comms_outbox" VALUES('04de5823b59b59033e63a0a5a5137f4b','ops-drill-0001','nostr','e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b','text',NULL,'{"id":"e1efd929db75293483368fb0f039130dbfdda46da2142ee9fa64deb110950ef0","pubkey":"caa9055fbb0685a67ec126b9f2a8002900031d77af20f5967e20e37e7ccbffc6","created_at":1796366881,"kind":1059,"tags":[["p","e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b"]],"content":"Ams3oTYJrT/wOOPfb71Ukk+9N+6mBdCrvMIp+nwvMS+LbaUh8b5PbYZgb9eaVnTur49F0ZH/eCEu0/kxbpt7PssFpDhBQajHGtYx9iH8n4D9a2nO0M9VCNVcEJgtUaExCH5RNaNl48K19zau6B0grqd/lUV82u8gWFmllhx2TqBJfS1oLInS1nBClBh/Ama4eOvQEjYG1loZT1pErvUpKH1GnCXDTFJEYWqoGcftd35qkvemI1yRPqA+hAKFTNBpS4j5o4W0V9u+C6bZDPEo2ZHK46W7PlC7zrvHqr89aXOXlM2t1XsLArXwoCAEueSSYTieLR0S44wQlTJ4guihUMl4vMMa1NPJ/Qo76lBCYjX1QaFhVkTqbTAdiv8XconrDMv6RLge5amRHWRbe+UXGt96h4HALWGPnZbtl7f/+YXmlV0CLMoe/YJaFMf4m76ccnbKWqGLmvNBEyqCtHbHNHs9yo3W2mHJuyemGnaHBH4vjc4gMSPLe54D/PDayPgv5CKblGqLdQFS3oX6xLwbNg89pqGsEi+P++TxBnpC0bm1t8pji0NBIffvUcYrzPDJCaWUKluL8DaW5Ss4ALxkRXskicZN2sdM8k8zajzOjOcH3dPVewHw6eTeVrm/1l8fSUSRTHmT6dP3LUetSIcrQB9gP4vWFnol9Epz5kMezY9E0iOnUB/2I5AobTjaiY8uhzVspDWPPmPSuGkM3R/od/V/VPOXQMsQEksfYoxox+imGV+jvUJFurfEdcsZaYKl9EKN9asNG5yEOnXldq2CzDZ5E5Dc3yvQS2tIkYG7uHOljdj8NN7tPI9mfAWI9zLec9h2tMMidwr7+oE7XenmzHCyU8Aq49dlT0302nXgSDBU1JnG3LceyAK6oSstWEYUrHZ6/ChJE04DjMaqQ3HKiaEhX7q2WM9C29/om1LMJjpeTK3Z8e/5rIBHzTl7z7U4SNMS1xd0qslPMpqmoWveyTDNiFzryXZrmUvNu/kydjFaW3U6gohKqWea7efqsMCOQtndByeO14If8bsR3mXnAA1Ox91ZdE+LzEhKV0w0y0sJvDhmT2QMQ2EWy+vTY/LNlygDRoM2Qtsj+OfoftpPxKRT/1T1jzbleJ/z6pCYtvVVrymFDoRbw2Z+QDu0oP20DJs1hZ/tDv0CJpdmd7BphoWqQcRAce2+tbY41JfJ4Bg7jILVhYbHl9pvfvfuddfloAoHDWllfpRFFtUJ6Nf65vxwlPD4Uzv7rr0AosDjTPeE0gbG318vOcCgRmb6kw8Ry//p","sig":"ae973260f54f4fcc5a75d2a22a2442ec44c3d3bab9d1be9119a92f49fb53b58b2e8e26afc0bcac8f471d57768738519089d62d1a52fdbb30993f674587fec86f"}','e1efd929db75293483368fb0f039130dbfdda46da2142ee9fa64deb110950ef0','fe7b78fd61985335020f85edabd50cfb58cb1919358225c8924f3d624fc18279','pending',0,1.79652968885434246061e+09,'no relay connected',NULL,'7c569e45036e7a0b1fdb1dbb04d1966aa5c0eba7962f2c5d6ab99c132ab68ab8',1.79652968685234951974e+09,NULL,1.7971344868523495197e+09);
CREATE TABLE comms_payments (
        id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, request_hash TEXT NOT NULL,
        kind TEXT NOT NULL, target TEXT NOT NULL, advisor TEXT, amount_msat INTEGER NOT NULL DEFAULT 0,
        reserved_msat INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, day INTEGER NOT NULL,
        payment_hash TEXT, invoice TEXT, preimage TEXT, fee_msat INTEGER, detail TEXT NOT NULL DEFAULT '{}',
        error_code INTEGER, error_message TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE comms_seen (
        id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL);
CREATE TABLE liquidity_leases (
        id TEXT PRIMARY KEY, role TEXT NOT NULL, counterparty TEXT NOT NULL, counterparty_node TEXT,
        offer TEXT, capacity_sat INTEGER NOT NULL, days INTEGER NOT NULL, fee_msat INTEGER NOT NULL,
        status TEXT NOT NULL, invoice TEXT, payment_hash TEXT, channel_id TEXT, short_channel_id TEXT,
        created_at INTEGER NOT NULL, started_at INTEGER, ends_at INTEGER, last_heartbeat_at INTEGER,
        last_heartbeat TEXT, updated_at INTEGER NOT NULL);
CREATE TABLE liquidity_offers (
            coordinate TEXT PRIMARY KEY, author TEXT NOT NULL, d_tag TEXT NOT NULL, own INTEGER NOT NULL,
            content TEXT NOT NULL, event_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER,
            fetched_at INTEGER NOT NULL);
CREATE TABLE liquidity_requests (
            coordinate TEXT PRIMARY KEY, author TEXT NOT NULL, d_tag TEXT NOT NULL, own INTEGER NOT NULL,
            content TEXT NOT NULL, event_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER,
            fetched_at INTEGER NOT NULL);
CREATE TABLE management_receipts (
        seq INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, advisor TEXT NOT NULL, transport TEXT NOT NULL,
        request_id TEXT NOT NULL, method TEXT NOT NULL, params TEXT NOT NULL, danger INTEGER NOT NULL,
        outcome TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, receipt_hash TEXT NOT NULL UNIQUE,
        node_id TEXT NOT NULL, signature TEXT NOT NULL);
CREATE TABLE marketplace_advisors (
        pubkey TEXT PRIMARY KEY, alias TEXT UNIQUE, status TEXT NOT NULL, permissions TEXT NOT NULL,
        daily_limit_msat INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '', expires_at INTEGER,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
INSERT INTO "marketplace_advisors" VALUES('e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b','drill-advisor','active','["monitor"]',1000000,'',NULL,1796529686,1796529686);
CREATE TABLE marketplace_confirmations (
        id TEXT PRIMARY KEY, pubkey TEXT NOT NULL, transport TEXT NOT NULL, request_id TEXT NOT NULL UNIQUE,
        method TEXT NOT NULL, params TEXT NOT NULL, danger INTEGER NOT NULL, status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', result TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        decided_at INTEGER);
CREATE TABLE marketplace_contracts (
        id TEXT PRIMARY KEY, advisor TEXT NOT NULL, offer TEXT, role TEXT NOT NULL, status TEXT NOT NULL,
        trial INTEGER NOT NULL DEFAULT 0, permissions TEXT NOT NULL, days INTEGER NOT NULL,
        price_msat INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
        started_at INTEGER, ends_at INTEGER, updated_at INTEGER NOT NULL);
CREATE TABLE marketplace_listings (
        kind INTEGER NOT NULL, d_tag TEXT NOT NULL, content TEXT NOT NULL, event_id TEXT,
        published_at INTEGER, PRIMARY KEY (kind, d_tag));
CREATE TABLE marketplace_offers (
        coordinate TEXT PRIMARY KEY, kind INTEGER NOT NULL, author TEXT NOT NULL, d_tag TEXT NOT NULL,
        content TEXT NOT NULL, event_id TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER,
        fetched_at INTEGER NOT NULL);
CREATE TABLE marketplace_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1), preset TEXT NOT NULL, overrides TEXT NOT NULL,
        updated_at INTEGER NOT NULL);
INSERT INTO "marketplace_policy" VALUES(1,'conservative','{"max_danger": null, "confirm_above": null, "blocked_methods": [], "danger": {}, "extra_methods": {}}',1796529686);
CREATE TABLE "nostr_state" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
INSERT INTO "nostr_state" VALUES('transport.dmail','{"provider": "cl-hive-archon", "registered_at": 1796529685.6988041, "send_method": "hive-archon-dmail-send"}',1796529685);
INSERT INTO "nostr_state" VALUES('relays.added','["ws://127.0.0.1:9"]',1796529686);
INSERT INTO "nostr_state" VALUES('relays.removed','[]',1796529686);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX comms_outbox_due ON comms_outbox(state, next_attempt_at);
CREATE INDEX comms_inbox_state ON comms_inbox(state, next_attempt_at);
CREATE INDEX comms_inbox_received ON comms_inbox(received_at);
CREATE INDEX comms_seen_created ON comms_seen(created_at);
CREATE INDEX comms_bindings_key ON comms_bindings(nostr_pubkey);
CREATE INDEX comms_advisor_nonces_seen ON comms_advisor_nonces(seen_at);
CREATE INDEX marketplace_confirmations_status ON marketplace_confirmations(status, created_at);
CREATE INDEX management_receipts_advisor ON management_receipts(advisor, seq);
CREATE INDEX comms_payments_day ON comms_payments(day, state);
CREATE INDEX comms_payments_advisor ON comms_payments(advisor, day);
CREATE INDEX comms_payments_state ON comms_payments(state);
CREATE INDEX comms_cashu_proofs_state ON comms_cashu_proofs(mint_url, state);
CREATE INDEX comms_cashu_outputs_op ON comms_cashu_outputs(op_id);
CREATE INDEX marketplace_contracts_advisor ON marketplace_contracts(advisor, status);
CREATE INDEX liquidity_leases_status ON liquidity_leases(status);
COMMIT;
