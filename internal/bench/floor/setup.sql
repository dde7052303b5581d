-- The floor under the notification path: what writing the evidence alone costs on this
-- server, with none of the engine around it (`make bench-floor`). This file creates tables
-- with the columns and indexes of the snapshot, the ledger, the outbox and the delivery
-- events, and times scope resolution's writes: one snapshot row and one ledger row per
-- tenant, one statement each. send.sql and events.sql are then run by pgbench on as many
-- connections as the machine has cores, one page of 1,000 per transaction:
--   * each notice written once, already sent (no planning row, no claim, no update), and
--     its tenant's ledger row marked notified;
--   * one delivery event per notice.
-- Nothing is read back, rendered or sent: the engine cannot be faster than this, and the
-- plain baseline of `breachflow bench` does none of it.

\set ON_ERROR_STOP on
\if :{?tenants}
\else
\set tenants 100000
\endif
\if :{?contacts}
\else
\set contacts 3
\endif

CREATE TABLE floor_ledger (
    incident_id text NOT NULL, phase integer NOT NULL, tenant_id text NOT NULL,
    owed_since timestamptz NOT NULL DEFAULT now(), added_version integer NOT NULL,
    partner_covered boolean NOT NULL DEFAULT false, deadline timestamptz NOT NULL,
    content_hash text, scope_version integer, released_at timestamptz, first_sent_at timestamptz,
    satisfied_at timestamptz, delivered_at timestamptz, bounced_at timestamptz, unreachable_at timestamptz,
    failed_at timestamptz, last_error text, removed_at timestamptz, removed_version integer,
    reminders integer NOT NULL DEFAULT 0, last_reminded_at timestamptz,
    PRIMARY KEY (incident_id, phase, tenant_id)
) WITH (fillfactor = 70);
CREATE INDEX ON floor_ledger (incident_id, tenant_id);
CREATE TABLE floor_snapshot (
    incident_id text NOT NULL, version integer NOT NULL, tenant_id text NOT NULL,
    deadline timestamptz NOT NULL, partner_covered boolean NOT NULL,
    PRIMARY KEY (incident_id, version, tenant_id)
);
CREATE TABLE floor_notices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id text NOT NULL, round integer NOT NULL, phase integer, tenant_id text NOT NULL,
    contact_id bigint NOT NULL, page integer NOT NULL, locale text NOT NULL, content_hash text NOT NULL,
    facts jsonb, status text NOT NULL, attempts integer NOT NULL DEFAULT 1, provider_message_id text,
    last_error text, claimed_at timestamptz, sent_at timestamptz, status_at timestamptz,
    possible_duplicate boolean NOT NULL DEFAULT false,
    UNIQUE (incident_id, round, contact_id)
) WITH (fillfactor = 60);
CREATE INDEX ON floor_notices (incident_id, round, page);
CREATE INDEX ON floor_notices (incident_id, tenant_id);
CREATE UNIQUE INDEX ON floor_notices (incident_id, phase, contact_id);
CREATE UNIQUE INDEX ON floor_notices (incident_id, round, contact_id) WHERE phase IS NULL;
CREATE TABLE floor_events (
    sg_event_id text PRIMARY KEY, notice_id bigint, event text NOT NULL, occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(), sg_message_id text, reason text
);
CREATE INDEX ON floor_events (notice_id);

CREATE SEQUENCE floor_send_page MINVALUE 0 START 0;
CREATE SEQUENCE floor_event_page MINVALUE 0 START 0;

\timing on
\echo 'scope resolution: one snapshot row per tenant'
INSERT INTO floor_snapshot SELECT 'INC-20261202-FLOOR0', 1, 't-' || lpad(i::text, 7, '0'), now() + interval '72 hours', false
FROM generate_series(0, :tenants - 1) i;
\echo 'scope resolution: one ledger row per tenant'
INSERT INTO floor_ledger (incident_id, phase, tenant_id, added_version, deadline, released_at)
SELECT 'INC-20261202-FLOOR0', 1, 't-' || lpad(i::text, 7, '0'), 1, now() + interval '72 hours', now()
FROM generate_series(0, :tenants - 1) i;
\timing off
ANALYZE floor_ledger;
