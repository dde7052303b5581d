-- The notification ledger: what every tenant in scope is owed, per notice phase, and
-- what happened to it. Status, evidence, the console and the API read it; workflows
-- reconcile against it.

-- An approval is of a content hash for one scope version.
ALTER TABLE approvals ADD COLUMN scope_version integer NOT NULL DEFAULT 0 CHECK (scope_version >= 0);
ALTER TABLE approvals DROP CONSTRAINT approvals_pkey;
ALTER TABLE approvals ADD PRIMARY KEY (incident_id, content_hash, scope_version, approver);

-- What changed between a scope version and the one before it.
ALTER TABLE scope_snapshots ADD COLUMN added integer NOT NULL DEFAULT 0,
                            ADD COLUMN removed integer NOT NULL DEFAULT 0;

-- The notices of an incident are phases: the initial notice, then updates.
CREATE TABLE notice_phases (
    incident_id text NOT NULL REFERENCES incidents (id),
    phase       integer NOT NULL CHECK (phase >= 1),
    kind        text NOT NULL CHECK (kind IN ('initial', 'update', 'final')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, phase)
);

-- One row per (incident, phase, tenant). A row is owed from owed_since until satisfied:
-- a notice to one of the tenant's contacts accepted by SendGrid and not bounced or
-- dropped. It is sent only once released (approved for its scope version, and through
-- the partner gate where the partner covers the tenant).
CREATE TABLE ledger (
    incident_id      text NOT NULL REFERENCES incidents (id),
    phase            integer NOT NULL,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    owed_since       timestamptz NOT NULL DEFAULT now(),
    added_version    integer NOT NULL,           -- the scope version that brought the tenant in
    partner_covered  boolean NOT NULL DEFAULT false,
    deadline         timestamptz NOT NULL,
    content_hash     text,                       -- the approved notice it is owed, once released
    scope_version    integer,                    -- the approved scope version it was released under
    released_at      timestamptz,
    first_sent_at    timestamptz,                -- first accepted by SendGrid
    satisfied_at     timestamptz,                -- earliest accepted send not bounced or dropped
    delivered_at     timestamptz,
    bounced_at       timestamptz,                -- latest bounce or drop
    unreachable_at   timestamptz,                -- no deliverable contact left while owed
    failed_at        timestamptz,                -- latest send refused for good
    last_error       text,
    removed_at       timestamptz,                -- left the scope: owed nothing more (what was sent stays recorded)
    removed_version  integer,
    reminders        integer NOT NULL DEFAULT 0,
    last_reminded_at timestamptz,
    PRIMARY KEY (incident_id, phase, tenant_id),
    FOREIGN KEY (incident_id, phase) REFERENCES notice_phases (incident_id, phase)
);
-- A tenant's rows across phases (scope changes, acknowledgements).
CREATE INDEX ledger_tenant_idx ON ledger (incident_id, tenant_id);

-- A notification pass (the table keeps its first name): a phase's notices to what the
-- ledger owes, or a reminder. Passes are planned page by page; plan_cursor is the last
-- tenant planned.
ALTER TABLE notice_rounds ADD COLUMN phase integer,
                          ADD COLUMN reminder integer NOT NULL DEFAULT 0,
                          ADD COLUMN plan_cursor text NOT NULL DEFAULT '',
                          ADD COLUMN planned_done boolean NOT NULL DEFAULT false,
                          ADD COLUMN pages integer NOT NULL DEFAULT 0;
ALTER TABLE notice_rounds ALTER COLUMN content_hash DROP NOT NULL;

-- Each notice names the phase it delivers (NULL for reminders) and the approved content
-- it carries. A contact has one notice per phase: a refused or cancelled one is planned
-- again into a later pass rather than duplicated. The status is in no index, so the
-- claim and sent updates stay heap-only (fillfactor leaves them room).
ALTER TABLE notices ADD COLUMN phase integer,
                    ADD COLUMN content_hash text;
-- cancelled: planned, then its tenant left the scope before it was sent.
ALTER TABLE notices DROP CONSTRAINT notices_status_check;
ALTER TABLE notices ADD CONSTRAINT notices_status_check CHECK (status IN
    ('pending', 'sending', 'sent', 'delivered', 'deferred', 'bounced', 'dropped', 'failed', 'cancelled'));
ALTER TABLE notices SET (fillfactor = 70);
UPDATE notices n SET phase = 1, content_hash = r.content_hash
FROM notice_rounds r
WHERE r.incident_id = n.incident_id AND r.round = n.round AND r.kind = 'initial'
  AND n.id = (SELECT min(m.id) FROM notices m JOIN notice_rounds mr ON mr.incident_id = m.incident_id AND mr.round = m.round
              WHERE mr.kind = 'initial' AND m.incident_id = n.incident_id AND m.contact_id = n.contact_id);
UPDATE notice_rounds SET phase = 1 WHERE kind = 'initial';
UPDATE notice_rounds r SET pages = coalesce((SELECT max(page) + 1 FROM notices n WHERE n.incident_id = r.incident_id AND n.round = r.round), 0),
                           planned_done = true;
CREATE UNIQUE INDEX notices_once_per_phase ON notices (incident_id, phase, contact_id);

-- Alerts raised to the responders, kept whatever happens to the email that carries them
-- (it may go through the very key that is failing).
CREATE TABLE alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id text REFERENCES incidents (id),
    kind        text NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
    message     text NOT NULL,
    tenants     integer NOT NULL DEFAULT 0,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    email_error text
);
CREATE INDEX alerts_incident_idx ON alerts (incident_id, id);

-- Incidents scoped before the ledger existed get phase 1 rows from their latest scope:
-- their approvals count for that version, a tenant a round planned is released under the
-- hash that round carried (notified if a send is still good, bounced or failed otherwise),
-- and a tenant no round planned (a partner still to answer, say) is owed, unreleased.
UPDATE approvals a SET scope_version = s.version
FROM (SELECT incident_id, max(version) AS version FROM scope_snapshots GROUP BY incident_id) s
WHERE s.incident_id = a.incident_id;
INSERT INTO notice_phases (incident_id, phase, kind, created_by)
SELECT DISTINCT incident_id, 1, 'initial', 'migration' FROM scope_snapshots;
INSERT INTO ledger (incident_id, phase, tenant_id, added_version, partner_covered, deadline, content_hash, scope_version,
                    released_at, first_sent_at, satisfied_at, delivered_at, bounced_at, failed_at, last_error)
SELECT st.incident_id, 1, st.tenant_id, st.version, st.partner_covered, st.deadline, s.hash,
       CASE WHEN s.hash IS NOT NULL THEN st.version END,
       CASE WHEN s.hash IS NOT NULL THEN coalesce(s.first_sent, s.planned_at) END,
       s.first_sent, s.good_sent, s.delivered, s.bounced,
       CASE WHEN s.good_sent IS NULL THEN s.failed END, CASE WHEN s.good_sent IS NULL THEN s.error END
FROM scope_tenants st
JOIN (SELECT incident_id, max(version) AS version FROM scope_snapshots GROUP BY incident_id) latest
  ON latest.incident_id = st.incident_id AND latest.version = st.version
LEFT JOIN LATERAL (
    SELECT min(n.content_hash) AS hash, min(n.sent_at) AS first_sent, min(r.created_at) AS planned_at,
           min(n.sent_at) FILTER (WHERE n.status IN ('sent', 'delivered', 'deferred')) AS good_sent,
           min(n.status_at) FILTER (WHERE n.status = 'delivered') AS delivered,
           max(n.status_at) FILTER (WHERE n.status IN ('bounced', 'dropped')) AS bounced,
           max(n.status_at) FILTER (WHERE n.status = 'failed') AS failed,
           max(n.last_error) FILTER (WHERE n.status = 'failed') AS error
    FROM notices n JOIN notice_rounds r ON r.incident_id = n.incident_id AND r.round = n.round
    WHERE n.incident_id = st.incident_id AND n.tenant_id = st.tenant_id AND n.phase = 1) s ON true;
-- Sends read the notice by its hash: keep every current draft there too.
INSERT INTO notice_drafts (incident_id, content_hash, draft, created_by)
SELECT id, notice_hash, notice_draft, declared_by FROM incidents WHERE notice_hash IS NOT NULL AND notice_draft IS NOT NULL
ON CONFLICT DO NOTHING;
