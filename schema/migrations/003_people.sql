-- Separation of duties by person, server-side console sessions.

-- A key belongs to a person (its name, compared case-insensitively) and holds a set of
-- roles: admin manages keys and is not an approver unless also given that role; a
-- partner key holds its team's role alone.
ALTER TABLE api_keys ADD COLUMN roles text[];
UPDATE api_keys SET roles = ARRAY[role];
ALTER TABLE api_keys ALTER COLUMN roles SET NOT NULL;
ALTER TABLE api_keys DROP COLUMN role;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_roles_check CHECK (
    cardinality(roles) BETWEEN 1 AND 3
    AND roles <@ ARRAY['admin', 'responder', 'approver']::text[]
    OR (cardinality(roles) = 1 AND roles[1] ~ '^partner:[a-z0-9][a-z0-9-]{0,62}$'));
ALTER TABLE api_keys ADD COLUMN person text GENERATED ALWAYS AS (lower(btrim(name))) STORED;
CREATE INDEX api_keys_person_idx ON api_keys (person);

-- Who proposed each draft, as a person: the drafter of a hash may not approve it.
ALTER TABLE notice_drafts ADD COLUMN drafted_by text;
UPDATE notice_drafts d SET drafted_by = k.person
FROM api_keys k WHERE d.created_by ~ '#[0-9]+$' AND k.id = substring(d.created_by FROM '#([0-9]+)$')::bigint;

-- Approvals count people: the approver column holds the person of the approving key.
ALTER TABLE approvals ADD COLUMN key_id bigint REFERENCES api_keys (id);

-- Console sessions live here so that signing out, or revoking the key, ends them; the
-- cookie carries a random id whose SHA-256 is the only form stored.
CREATE TABLE console_sessions (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    key_id     bigint NOT NULL REFERENCES api_keys (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ended_at   timestamptz,
    CHECK (expires_at > created_at AND expires_at <= created_at + interval '12 hours')
);
CREATE INDEX console_sessions_key_idx ON console_sessions (key_id);
