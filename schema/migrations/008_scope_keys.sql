-- Resolving a scope writes a snapshot row and a ledger row per tenant, each read from
-- tenants in the same statement: checking every one against tenants again (and the
-- ledger's incident, which its phase already implies) was most of the time a scope of a
-- million tenants took. What those keys guarded is kept by refusing, instead, to delete
-- or rename a tenant that an incident's scope, ledger or outbox names.
ALTER TABLE ledger DROP CONSTRAINT ledger_incident_id_fkey,
                   DROP CONSTRAINT ledger_tenant_id_fkey;
ALTER TABLE scope_tenants DROP CONSTRAINT scope_tenants_tenant_id_fkey;

CREATE FUNCTION tenant_in_use() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM scope_tenants WHERE tenant_id = OLD.id)
       OR EXISTS (SELECT 1 FROM ledger WHERE tenant_id = OLD.id)
       OR EXISTS (SELECT 1 FROM notices WHERE tenant_id = OLD.id) THEN
        RAISE EXCEPTION 'tenant % is named by an incident''s scope, ledger or notices: it cannot be % (the evidence needs it)',
            OLD.id, lower(TG_OP) || 'd' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_in_use BEFORE DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION tenant_in_use();
CREATE TRIGGER tenants_id_in_use BEFORE UPDATE OF id ON tenants FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION tenant_in_use();
