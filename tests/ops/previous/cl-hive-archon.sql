BEGIN TRANSACTION;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
INSERT INTO "_sqlite_migrations" VALUES(1,'cl-hive-archon','m001_archon_meta','2026-12-06 04:01:25.090426+00:00');
INSERT INTO "_sqlite_migrations" VALUES(2,'cl-hive-archon','m002_archon_identity_outbox','2026-12-06 04:01:25.091429+00:00');
INSERT INTO "_sqlite_migrations" VALUES(3,'cl-hive-archon','m003_archon_bindings','2026-12-06 04:01:25.092429+00:00');
INSERT INTO "_sqlite_migrations" VALUES(4,'cl-hive-archon','m004_did_credentials','2026-12-06 04:01:25.110528+00:00');
INSERT INTO "_sqlite_migrations" VALUES(5,'cl-hive-archon','m005_archon_dmail','2026-12-06 04:01:25.111816+00:00');
INSERT INTO "_sqlite_migrations" VALUES(6,'cl-hive-archon','m006_archon_backups','2026-12-06 04:01:25.112665+00:00');
CREATE TABLE archon_backups (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            manifest TEXT NOT NULL,
            vault_did TEXT,
            created_at REAL NOT NULL
        );
INSERT INTO "archon_backups" VALUES(1,'/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/archon-backups/hive-backup-20261206T040126-b968ec.hbk','d1068b94b01799fb69a79246e9a1e8b82f6c5b7d1ac7758bae9e0928d4ebecff',17609,'{"format": "cl-hive-archon-backup", "version": 1, "created": "2026-12-06T04:01:26Z", "did": "did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a", "node_id": "038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b", "members": [{"plugin": "cl-hive-archon", "file": "cl-hive-archon.sqlite3", "source": "/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/cl-hive-archon.sqlite3", "schema_version": 6, "migrations": ["m001_archon_meta", "m002_archon_identity_outbox", "m003_archon_bindings", "m004_did_credentials", "m005_archon_dmail", "m006_archon_backups"], "size": 118784, "sha256": "c488c2c54455ee232971fd8f38e27d59107b2d94c6c186ba8161f8686df93924"}, {"plugin": "cl-hive", "file": "cl-hive.sqlite3", "source": "/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/cl-hive.sqlite3", "schema_version": 13, "migrations": ["m001_hive_meta", "m002_members", "m003_protocol", "m004_promotion_and_bans", "m005_admissions", "m006_hive_fleet_state", "m007_hive_intents", "m100_hive_governance", "m101_hive_budget_spend", "m102_hive_audit_log", "m103_hive_saved_fee_policies", "m104_hive_revenue_ops", "m105_hive_revenue_ops_policies"], "size": 237568, "sha256": "5c2f31fb0b697ed3e3e3da11ec1289a2c919a67d49e7bafb2acd7d079ec8e483"}, {"plugin": "cl-hive-comms", "file": "cl-hive-comms.sqlite3", "source": "/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/cl-hive-comms.sqlite3", "schema_version": 7, "migrations": ["m001_nostr_state", "m002_comms_transport", "m100_advisors_policy_receipts", "m101_payments", "m102_cashu", "m103_marketplace", "m104_liquidity"], "size": 274432, "sha256": "c229463dccfe372a21861fa51fc508ed0070d986f2a0cff536066908317ff929"}], "absent": []}',NULL,1.79652968700063323977e+09);
CREATE TABLE archon_bindings (
            kind TEXT PRIMARY KEY CHECK (kind IN ('cln', 'nostr')),
            did TEXT NOT NULL,
            subject TEXT NOT NULL,
            node_id TEXT NOT NULL,
            statement TEXT NOT NULL,
            signature TEXT NOT NULL,
            created_at REAL NOT NULL
        );
INSERT INTO "archon_bindings" VALUES('cln','did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b','038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b','cl-hive-archon/node-binding/v1: this Lightning node controls did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','rymdrhfqz4ahe3hp94itzfoi4jne3pofqwmymxsa43atosrobytnys9u1efn3391fba5fq4i1cenpiq8q6y34xzhee6xcsj4uatbcfco',1.79652968686208391185e+09);
CREATE TABLE archon_dmail (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
            message_id TEXT NOT NULL UNIQUE,
            dmail_did TEXT UNIQUE,
            notice_did TEXT,
            peer_did TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            payload_hex TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_error TEXT
        );
CREATE TABLE archon_identity (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            did TEXT NOT NULL,
            registry TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            create_op TEXT NOT NULL,
            created_at REAL NOT NULL,
            published_at REAL,
            version_id TEXT
        );
INSERT INTO "archon_identity" VALUES(1,'did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','hyperswarm','{"kty": "EC", "crv": "secp256k1", "x": "BpSE1yTYAm0ZH99IGu6ap1knRJimpAgC4vgtvjQokZw", "y": "da_pCmi-3SVMVl1QhuAf8CYnuxAxxEXSCs_2fm8vyvk"}','{"type": "create", "created": "1970-01-01T00:00:00.000Z", "registration": {"version": 1, "type": "agent", "registry": "hyperswarm"}, "publicJwk": {"kty": "EC", "crv": "secp256k1", "x": "BpSE1yTYAm0ZH99IGu6ap1knRJimpAgC4vgtvjQokZw", "y": "da_pCmi-3SVMVl1QhuAf8CYnuxAxxEXSCs_2fm8vyvk"}, "proof": {"type": "EcdsaSecp256k1Signature2019", "created": "1970-01-01T00:00:00.000Z", "verificationMethod": "#key-1", "proofPurpose": "authentication", "proofValue": "dn9PCLThjjzFOoz6tAbbJm1AOfnxPy9-LOlpm19KYgc8HtpUllH4T7MHwKdyVA5Eub9dEOKoW8o7za2-3aH4wA"}}',1.79652968513491249086e+09,NULL,NULL);
CREATE TABLE "archon_meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT,
   "updated_at" INTEGER
);
INSERT INTO "archon_meta" VALUES('sibling-db-path:cl-hive','/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/cl-hive.sqlite3',1796529686);
INSERT INTO "archon_meta" VALUES('sibling-db-path:cl-hive-comms','/tmp/ltests-_it0lc0y/test_write_the_previous_versions_databases_1/lightning-1/regtest/cl-hive-comms.sqlite3',1796529686);
CREATE TABLE archon_notices (
            notice_did TEXT PRIMARY KEY,
            outcome TEXT NOT NULL,
            seen_at REAL NOT NULL
        );
CREATE TABLE archon_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            dedup_key TEXT NOT NULL UNIQUE,
            did TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            result TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
INSERT INTO "archon_outbox" VALUES(1,'create','create:did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','{"op": {"type": "create", "created": "1970-01-01T00:00:00.000Z", "registration": {"version": 1, "type": "agent", "registry": "hyperswarm"}, "publicJwk": {"kty": "EC", "crv": "secp256k1", "x": "BpSE1yTYAm0ZH99IGu6ap1knRJimpAgC4vgtvjQokZw", "y": "da_pCmi-3SVMVl1QhuAf8CYnuxAxxEXSCs_2fm8vyvk"}, "proof": {"type": "EcdsaSecp256k1Signature2019", "created": "1970-01-01T00:00:00.000Z", "verificationMethod": "#key-1", "proofPurpose": "authentication", "proofValue": "dn9PCLThjjzFOoz6tAbbJm1AOfnxPy9-LOlpm19KYgc8HtpUllH4T7MHwKdyVA5Eub9dEOKoW8o7za2-3aH4wA"}}}','pending',0,0.0,NULL,NULL,1.79652968513505434987e+09,1.79652968513505434987e+09);
INSERT INTO "archon_outbox" VALUES(2,'update','update:did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a:27a74b99978689db007b640826c7ce06','did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a','{"did": "did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a", "set": {"cln": {"node_id": "038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b", "statement": "cl-hive-archon/node-binding/v1: this Lightning node controls did:cid:bagaaierae6dkcxyuinuoucb7slgushbsp4p55ruchkjrtqritoaa47wye47a", "signature": "rymdrhfqz4ahe3hp94itzfoi4jne3pofqwmymxsa43atosrobytnys9u1efn3391fba5fq4i1cenpiq8q6y34xzhee6xcsj4uatbcfco"}}, "merge": {}}','pending',0,0.0,NULL,NULL,1.79652968686231136324e+09,1.79652968686231136324e+09);
CREATE TABLE archon_peers (
            did TEXT PRIMARY KEY,
            node_id TEXT,
            nostr_pubkey TEXT,
            version_id TEXT,
            verified_at REAL NOT NULL
        );
CREATE TABLE did_credentials (
            credential_did TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('issued', 'held', 'verified')),
            kind TEXT NOT NULL CHECK (kind IN ('membership', 'reputation')),
            issuer_did TEXT NOT NULL,
            subject_did TEXT NOT NULL,
            subject_node_id TEXT,
            claims TEXT NOT NULL,
            vc TEXT NOT NULL,
            valid_from TEXT,
            valid_until TEXT,
            status TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'expired', 'invalid')),
            created_at REAL NOT NULL,
            checked_at REAL NOT NULL,
            revoked_at REAL,
            PRIMARY KEY (credential_did, role)
        );
CREATE TABLE did_reputation_cache (
            subject_did TEXT NOT NULL,
            issuer_did TEXT NOT NULL,
            node_id TEXT,
            score INTEGER NOT NULL,
            credential_did TEXT NOT NULL,
            valid_until TEXT,
            checked_at REAL NOT NULL,
            PRIMARY KEY (subject_did, issuer_did)
        );
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX archon_outbox_status ON archon_outbox (status, id);
CREATE INDEX archon_peers_node ON archon_peers (node_id);
CREATE INDEX did_credentials_node ON did_credentials (subject_node_id, kind);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('archon_outbox',2);
INSERT INTO "sqlite_sequence" VALUES('archon_backups',1);
COMMIT;
