-- The tenants a phase still owes, in the keyset order a pass plans them: planning walks
-- this index whatever the planner statistics say, and it holds only what is still owed.
CREATE INDEX ledger_owed_idx ON ledger (incident_id, phase, tenant_id)
    WHERE released_at IS NOT NULL AND satisfied_at IS NULL AND removed_at IS NULL;

-- A page's send attempts. An attempt claims the page (claim = its number, claimed_at),
-- marks when its first request starts (requested_at) and clears both once SendGrid's answer
-- to everything it sent is recorded. A claim left behind with a request started (a worker
-- died mid-request) puts the page's unsent notices in doubt until delivery events or the
-- grace window settle them; one left before any request went out doubts nothing. An attempt
-- that saw an answer lost marks those notices 'sending' itself. One row per page instead of
-- a write per notice keeps a claim one statement.
CREATE TABLE notice_pages (
    incident_id  text NOT NULL,
    round        integer NOT NULL,
    page         integer NOT NULL CHECK (page >= 0),
    attempts     integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    claim        integer CHECK (claim BETWEEN 1 AND attempts),
    claimed_at   timestamptz,
    requested_at timestamptz,
    CHECK ((claim IS NULL) = (claimed_at IS NULL)),
    CHECK (requested_at IS NULL OR claim IS NOT NULL),
    PRIMARY KEY (incident_id, round, page),
    FOREIGN KEY (incident_id, round) REFERENCES notice_rounds (incident_id, round)
);

-- A phase's notices are unique per contact (notices_once_per_phase) and a pass delivers one
-- phase, so uniqueness per (round, contact) is only left to say for reminders: one index
-- fewer to write per planned notice.
ALTER TABLE notices DROP CONSTRAINT notices_incident_id_round_contact_id_key;
CREATE UNIQUE INDEX notices_once_per_reminder ON notices (incident_id, round, contact_id) WHERE phase IS NULL;

-- A notice's contact already names its tenant (and a tenant cannot go while its contacts
-- have notices): the second foreign-key check per planned notice buys nothing.
ALTER TABLE notices DROP CONSTRAINT notices_tenant_id_fkey;
