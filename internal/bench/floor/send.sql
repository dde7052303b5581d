-- One page of the floor (setup.sql): its notices written once as sent, its tenants marked
-- notified. pgbench variables: notices, contacts.
WITH pg AS (SELECT nextval('floor_send_page') AS p), ins AS (
    INSERT INTO floor_notices (incident_id, round, phase, tenant_id, contact_id, page, locale, content_hash, facts,
                               status, provider_message_id, sent_at, status_at)
    SELECT 'INC-20261202-FLOOR0', 1, 1, 't-' || lpad((i / :contacts)::text, 7, '0'), i, pg.p, 'en',
           'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '{"services": ["compute"]}',
           'sent', 'msg-' || pg.p, now(), now()
    FROM pg, generate_series(pg.p * 1000, least(pg.p * 1000 + 999, :notices - 1)) i
    RETURNING tenant_id
)
UPDATE floor_ledger l SET first_sent_at = now(), satisfied_at = now()
FROM (SELECT DISTINCT tenant_id FROM ins) x
WHERE l.incident_id = 'INC-20261202-FLOOR0' AND l.phase = 1 AND l.tenant_id = x.tenant_id;
