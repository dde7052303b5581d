-- One page of the floor's delivery events (setup.sql): one event per notice of the page.
WITH pg AS (SELECT nextval('floor_event_page') AS p)
INSERT INTO floor_events (sg_event_id, notice_id, event, occurred_at, sg_message_id)
SELECT 'ev-' || n.id, n.id, 'delivered', now(), n.provider_message_id || '.' || n.id
FROM pg, floor_notices n WHERE n.incident_id = 'INC-20261202-FLOOR0' AND n.round = 1 AND n.page = pg.p;
