BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'cl-hive-comms','m001_nostr_state','2026-12-06 03:11:53.713185+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'cl-hive-comms','m002_comms_transport','2026-12-06 03:11:53.718616+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'cl-hive-comms','m100_advisors_policy_receipts','2026-12-06 03:11:53.726451+00:00');
INSERT INTO "_sqlite_migrations" VALUES(4,'cl-hive-comms','m101_payments','2026-12-06 03:11:53.733329+00:00');
INSERT INTO "_sqlite_migrations" VALUES(5,'cl-hive-comms','m102_cashu','2026-12-06 03:11:53.743969+00:00');
INSERT INTO "_sqlite_migrations" VALUES(6,'cl-hive-comms','m103_marketplace','2026-12-06 03:11:53.745217+00:00');
INSERT INTO "_sqlite_migrations" VALUES(7,'cl-hive-comms','m104_liquidity','2026-12-06 03:11:53.748881+00:00');
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
INSERT INTO "comms_outbox" VALUES('04de5823b59b59033e63a0a5a5137f4b','ops-drill-0001','nostr','e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b','text',NULL,'{"id":"3d7875ad3f359c29d8ff6ac41926da6a3e6a0b5a65a8ff48eb425fe7ddbbc6e4","pubkey":"b99a0bee4ff68ae6bb23bc099a86b80494cd38b1d4a4472388f599de2a88bfef","created_at":1796501612,"kind":1059,"tags":[["p","e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b"]],"content":"ApbNlmOpBuk+zMTjobM42A+vCMOvTiyla62nG/+veT9Yb4OqD2PSjvLdrekhrhzrcusoP+p1lomMjCzgOUi+DC2MM2qjSI4bsfeQcj3+bCa1wed4lKXZVPzpQ8T1rL6pdXaJ11xzK9pdV5cm5DUzh9ZOyJwr1sBapa19yy2Hu4P/WEb4qufvOX5vF+RwDLz80PuRcUiwPuB5bDtqVI5QdCeB8c5E0WCin68Oj7aYLnevX9ida03F6FdXsD0Uq1GturWSx57eUDiikIhtE7b6JIsnyHAxsE0hern5olVVIAeafxmR9/lC4cX2qDkk6dKYwG87wNDR1XDfKtB9DQgwTm3e2F2SqA5dzJJ2TUFwYqWA+rt+VxHf8ysmjuu8mjMbBrHtnsPsgknVTVVAmVHAq7kGIaiICJYd+39N/eFIzWpWZTiN8gYllvFALv/XyDS5CJhQ9xZYwcjD9/ZIW8RGNqbDe93laQtdfMCoWmUA0jC80Nrk+chjShUzzBP2VIpkyuXDLhIR6Pd0HQac9Osx3PlHMmtE2uBfhZvKsBQlnUSCb+x4Dwm7Tg4/MbFEdVkO08r0/J/v82ZI04zrwE7ThL19U0n2K9XVy3Cfw7Ise2fdvSYLQMepUu3rbBKoIGkH5L6K5uWT2L26zkl76Mwusv+kSfAlw3+9rUTI4tCWLr1gbQowkOSZFu+A7tY1WCrLI8OUq1OlrZgn4CLJNsFrR3yECv9YUjbJKHPCeK6s1obCCmYwv3RIrHTWzfN7Mv5fFp7o7BtYqJTmTENBGud7g68a4K0dBoBr0Yq3QZWSfHenoGfToDMAzDOkqDirSWNxgBYgh0tJXLj36eJCZA8tQRNsQn4GjZRxa+L4Pd90U9mCeB0Z0xxwi8/DfrkEUBOYw1UFJzNwSBnfVdiewf0dxTToXrVXLln7rL+qnNoGvdATsBCVtGy8bwgVnr66oDAIOICL+HsoL3eACywiVrzdGRx3qFTArcOoz/PbwZyKF7PrR8ujcSWQtIaghjKj0LZUHFo97FrusSBBWh3lRXb1PvUHL2GB7BUPanK+n1xe5J2+vYnhbTqBa5NqovB/6FnB5IARmXSnax+B8EaBaq9sueJNLhU/hgM/aLutc3MAsM9Z0IG+gkvXzdGyDVkWslqAplBwPeq1Wd9KbZHw7cnckoSOJ87Ssqb6MdkdW3d6E6NbMHofnoSv5Ma2128RxOR2ZnnMunS82Kgvozo/Q8578yg5Y8u1zHkzCC3flrHpwM82yiuimHvpsa1bTA1E7Q/9OoR2","sig":"32a3a558f5f4ba766367f4b2ef45258144402061390dfd84ae82335e392e40ff2be7cecbce15fad7b791bb41590e3a99c64bfdc4b8a29beafe278787de04741c"}','3d7875ad3f359c29d8ff6ac41926da6a3e6a0b5a65a8ff48eb425fe7ddbbc6e4','29f90771e4ccd2c8e5d0a24fa0e44097dbd773e587291f47d268a49948c39950','pending',0,1.796526719858479023e+09,'no relay connected',NULL,'7c569e45036e7a0b1fdb1dbb04d1966aa5c0eba7962f2c5d6ab99c132ab68ab8',1.79652671784847617147e+09,NULL,1.79713151784847617155e+09);
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
INSERT INTO "marketplace_advisors" VALUES('e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b','drill-advisor','active','["monitor"]',1000000,'',NULL,1796526717,1796526717);
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
INSERT INTO "marketplace_policy" VALUES(1,'conservative','{"max_danger": null, "confirm_above": null, "blocked_methods": [], "danger": {}, "extra_methods": {}}',1796526717);
CREATE TABLE "nostr_state" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
INSERT INTO "nostr_state" VALUES('transport.dmail','{"provider": "cl-hive-archon", "registered_at": 1796526714.1272326, "send_method": "hive-archon-dmail-send"}',1796526714);
INSERT INTO "nostr_state" VALUES('relays.added','["ws://127.0.0.1:9"]',1796526717);
INSERT INTO "nostr_state" VALUES('relays.removed','[]',1796526717);
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
