CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Core domain: tenants and their contacts, partners, incidents, scope snapshots,
-- the notice outbox, acknowledgement tokens and acknowledgements, delivery events,
-- API keys and the hash-chained audit log.

CREATE TABLE tenants (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    country          text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    locale           text NOT NULL CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    services         text[] NOT NULL DEFAULT '{}',
    connectors       text[] NOT NULL DEFAULT '{}',
    data_regions     text[] NOT NULL DEFAULT '{}',
    regimes          text[] NOT NULL DEFAULT '{}',
    notice_sla_hours integer NOT NULL CHECK (notice_sla_hours BETWEEN 1 AND 8760),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- No GIN indexes on the list columns: scope resolution reads every tenant once (a
-- sequential scan is the fastest plan at any selectivity that matters here), and GIN
-- maintenance would triple the cost of a bulk import.

CREATE TABLE contacts (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email                text NOT NULL CHECK (length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    name                 text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    role                 text NOT NULL DEFAULT '' CHECK (length(role) <= 100),
    locale               text CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    kind                 text NOT NULL CHECK (kind IN ('primary', 'alternate')),
    undeliverable_at     timestamptz,
    undeliverable_reason text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);

CREATE TABLE partners (
    name                    text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    display_name            text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    team_emails             text[] NOT NULL CHECK (cardinality(team_emails) BETWEEN 1 AND 50),
    service                 text NOT NULL CHECK (length(service) BETWEEN 1 AND 100),
    response_deadline_hours integer NOT NULL CHECK (response_deadline_hours BETWEEN 1 AND 720),
    created_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    id                   text PRIMARY KEY CHECK (id ~ '^INC-[0-9A-Z-]{4,60}$'),
    declaration_key      text UNIQUE CHECK (length(declaration_key) BETWEEN 1 AND 200),
    declaration_hash     text NOT NULL,
    title                text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    summary              text NOT NULL DEFAULT '' CHECK (length(summary) <= 20000),
    severity             text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    aware_at             timestamptz NOT NULL,
    data_categories      text[] NOT NULL DEFAULT '{}',
    scope_criteria       jsonb NOT NULL DEFAULT '{}',
    partner_name         text REFERENCES partners (name),
    reportable           boolean,
    reportable_rationale text,
    notice_draft         jsonb,
    notice_hash          text,
    stage                text NOT NULL DEFAULT 'declared' CHECK (stage IN
                         ('declared', 'assessing', 'scoping', 'approval', 'partner_review',
                          'notifying', 'tracking', 'closed')),
    closed_reason        text,
    declared_by          text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_stage_idx ON incidents (stage, created_at DESC);

-- A scope snapshot is one version of the affected-tenant list.
CREATE TABLE scope_snapshots (
    incident_id  text NOT NULL REFERENCES incidents (id),
    version      integer NOT NULL CHECK (version >= 1),
    criteria     jsonb NOT NULL,
    tenant_count integer NOT NULL DEFAULT 0,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, version)
);

CREATE TABLE scope_tenants (
    incident_id     text NOT NULL,
    version         integer NOT NULL,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    deadline        timestamptz NOT NULL,
    partner_covered boolean NOT NULL DEFAULT false,
    PRIMARY KEY (incident_id, version, tenant_id),
    FOREIGN KEY (incident_id, version) REFERENCES scope_snapshots (incident_id, version) ON DELETE CASCADE
);

-- A notification round: the initial notice, a reminder, a follow-up or an escalation.
CREATE TABLE notice_rounds (
    incident_id   text NOT NULL REFERENCES incidents (id),
    round         integer NOT NULL CHECK (round >= 1),
    kind          text NOT NULL CHECK (kind IN ('initial', 'reminder', 'followup', 'escalation')),
    scope_version integer NOT NULL,
    content_hash  text NOT NULL,
    planned       integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, round)
);

-- The outbox: one row per (incident, round, contact). It is claimed before a send and
-- marked sent with the provider's message id after, so a retried page sends only what
-- is not yet sent.
CREATE TABLE notices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id         text NOT NULL,
    round               integer NOT NULL,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    contact_id          bigint NOT NULL REFERENCES contacts (id),
    page                integer NOT NULL CHECK (page >= 0),
    locale              text NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN
                        ('pending', 'sending', 'sent', 'delivered', 'deferred', 'bounced', 'dropped', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    provider_message_id text,
    last_error          text,
    claimed_at          timestamptz,
    sent_at             timestamptz,
    status_at           timestamptz,
    UNIQUE (incident_id, round, contact_id),
    FOREIGN KEY (incident_id, round) REFERENCES notice_rounds (incident_id, round)
);
CREATE INDEX notices_page_idx ON notices (incident_id, round, page);
CREATE INDEX notices_tenant_idx ON notices (incident_id, tenant_id);

-- Only the SHA-256 of an acknowledgement token is kept. The token itself is
-- HMAC-SHA256(secret, incident_id ':' tenant_id ':' hex(nonce)), so the sender can rebuild
-- it for every retry without it ever being stored.
CREATE TABLE ack_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    nonce       bytea NOT NULL CHECK (length(nonce) = 16),
    incident_id text NOT NULL REFERENCES incidents (id),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    UNIQUE (incident_id, tenant_id)
);

CREATE TABLE acknowledgements (
    incident_id     text NOT NULL REFERENCES incidents (id),
    tenant_id       text NOT NULL REFERENCES tenants (id),
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    via             text NOT NULL CHECK (via IN ('link', 'responder', 'api')),
    actor           text NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, tenant_id)
);

CREATE TABLE delivery_events (
    sg_event_id   text PRIMARY KEY CHECK (length(sg_event_id) BETWEEN 1 AND 200),
    notice_id     bigint REFERENCES notices (id),
    event         text NOT NULL CHECK (length(event) BETWEEN 1 AND 40),
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    sg_message_id text,
    reason        text
);
CREATE INDEX delivery_events_notice_idx ON delivery_events (notice_id);

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role         text NOT NULL CHECK (role IN ('admin', 'responder', 'approver')
                                      OR role ~ '^partner:[a-z0-9][a-z0-9-]{0,62}$'),
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Append-only audit log. Each row's hash covers the previous row's hash and the row
-- itself; the chain is extended under a transaction-scoped advisory lock so concurrent
-- inserts are serialised and cannot fork it (prev_hash is unique as a second guard).
CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    incident_id text,
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action      text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    detail      jsonb NOT NULL DEFAULT '{}',
    prev_hash   bytea NOT NULL UNIQUE,
    hash        bytea NOT NULL
);
CREATE INDEX audit_log_incident_idx ON audit_log (incident_id, seq) WHERE incident_id IS NOT NULL;

-- The exact bytes a row's hash covers. Used by the trigger and by verification.
CREATE FUNCTION audit_canonical(p_seq bigint, p_at timestamptz, p_incident text, p_actor text,
                                p_action text, p_detail jsonb) RETURNS bytea
    LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(jsonb_build_array(p_seq, (extract(epoch FROM p_at) * 1000000)::bigint,
                                        p_incident, p_actor, p_action, p_detail)::text, 'UTF8')
$$;

CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq  bigint;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(7251309);
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.at := coalesce(NEW.at, clock_timestamp());
    NEW.prev_hash := coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    NEW.hash := sha256(NEW.prev_hash || audit_canonical(NEW.seq, NEW.at, NEW.incident_id, NEW.actor,
                                                        NEW.action, NEW.detail));
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- Two different responders approve the same content hash.
CREATE TABLE approvals (
    incident_id  text NOT NULL REFERENCES incidents (id),
    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    approver     text NOT NULL CHECK (length(approver) BETWEEN 1 AND 200),
    approved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, content_hash, approver)
);

CREATE TABLE partner_reviews (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     text NOT NULL REFERENCES incidents (id),
    partner_name    text NOT NULL REFERENCES partners (name),
    content_hash    text NOT NULL,
    scope_version   integer NOT NULL,
    covered_tenants integer NOT NULL CHECK (covered_tenants >= 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'confirmed', 'changes_requested', 'overridden', 'superseded')),
    comment         text CHECK (length(comment) <= 10000),
    decided_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    due_at          timestamptz NOT NULL,
    decided_at      timestamptz
);
CREATE UNIQUE INDEX partner_reviews_one_pending ON partner_reviews (incident_id) WHERE status = 'pending';
CREATE INDEX partner_reviews_partner_idx ON partner_reviews (partner_name, status);

-- Secrets the deployment did not configure, generated once (acknowledgement links).
CREATE TABLE app_secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every notice draft ever proposed, by content hash, so workflow history carries only
-- the hash (a draft names the provider's contact point).
CREATE TABLE notice_drafts (
    incident_id  text NOT NULL REFERENCES incidents (id),
    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    draft        jsonb NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, content_hash)
);
