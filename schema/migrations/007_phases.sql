-- Each notice phase has its own draft. A stored draft names the phase it is for; a phase
-- keeps the content hash it was last approved with, which tenants added to the scope
-- later are sent.
ALTER TABLE notice_drafts ADD COLUMN phase integer CHECK (phase >= 1);
ALTER TABLE notice_phases ADD COLUMN content_hash text CHECK (content_hash ~ '^[0-9a-f]{64}$');
UPDATE notice_phases p SET content_hash = (
    SELECT l.content_hash FROM ledger l
    WHERE l.incident_id = p.incident_id AND l.phase = p.phase AND l.content_hash IS NOT NULL
    ORDER BY l.released_at DESC LIMIT 1);

-- Per-tenant impact imported for an incident: that tenant's own approximate numbers of
-- data subjects and records, shown in its notices.
CREATE TABLE tenant_impacts (
    incident_id   text NOT NULL REFERENCES incidents (id),
    tenant_id     text NOT NULL REFERENCES tenants (id),
    data_subjects bigint NOT NULL CHECK (data_subjects >= 0),
    records       bigint NOT NULL CHECK (records >= 0),
    imported_by   text NOT NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, tenant_id)
);

-- The facts a notice states about its tenant (why it is affected: the values of its
-- services, connectors and data regions the scope criteria named, its impact numbers),
-- frozen when the notice is planned, as its content hash and locale are: the send renders
-- them and the evidence shows them as sent. NULL: none (notices planned before).
ALTER TABLE notices ADD COLUMN facts jsonb;
