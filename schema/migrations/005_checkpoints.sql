-- Signed checkpoints of the audit chain. A checkpoint signs the chain's head (seq, hash)
-- with the Ed25519 key from the configuration (never kept in this database), so that a
-- rewrite of the chain that recomputes every later hash no longer checks out. An incident
-- checkpoint also signs a digest of that incident's rows up to the head, which lets an
-- evidence pack prove its audit excerpt offline without the other incidents' rows.
CREATE TABLE audit_checkpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq             bigint NOT NULL CHECK (seq >= 1),
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    incident_id     text,
    incident_rows   bigint NOT NULL DEFAULT 0 CHECK (incident_rows >= 0),
    incident_digest bytea CHECK (length(incident_digest) = 32),
    reason          text NOT NULL CHECK (reason IN ('periodic', 'close', 'verify', 'export')),
    taken_at        timestamptz NOT NULL,
    key_id          text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    signature       bytea NOT NULL CHECK (length(signature) = 64),
    CHECK ((incident_id IS NULL) = (incident_digest IS NULL))
);
-- No foreign key to audit_log: a checkpoint naming a row that is gone is what
-- verification must be able to report, not something the database hides.
CREATE INDEX audit_checkpoints_seq_idx ON audit_checkpoints (seq, id);
CREATE INDEX audit_checkpoints_incident_idx ON audit_checkpoints (incident_id, seq) WHERE incident_id IS NOT NULL;

CREATE FUNCTION audit_checkpoints_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_reject_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_reject_change();
