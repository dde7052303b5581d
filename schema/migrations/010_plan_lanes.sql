-- A pass is planned in lanes: lane l of a pass planned in n lanes takes the owed tenants
-- whose id hashes to l (mod n), keeps its own keyset cursor, and numbers its pages
-- l, l + n, l + 2n, … . Lanes plan at the same time, each holding only its own row, so
-- the planner (the slowest part of a large pass) is no longer one statement after another.
-- A pass planned before this keeps planning as its lane 0 of 1.
ALTER TABLE notice_rounds ADD COLUMN lanes integer NOT NULL DEFAULT 1 CHECK (lanes BETWEEN 1 AND 16);

CREATE TABLE notice_plan_lanes (
    incident_id  text NOT NULL,
    round        integer NOT NULL,
    lane         integer NOT NULL CHECK (lane >= 0),
    plan_cursor  text NOT NULL DEFAULT '',
    planned_done boolean NOT NULL DEFAULT false,
    pages        integer NOT NULL DEFAULT 0,  -- the lane's pages: numbers lane + lanes * k, k < pages
    planned      integer NOT NULL DEFAULT 0,  -- the lane's notices
    PRIMARY KEY (incident_id, round, lane),
    FOREIGN KEY (incident_id, round) REFERENCES notice_rounds (incident_id, round)
);
CREATE TRIGGER notice_plan_lanes_kept BEFORE DELETE OR TRUNCATE ON notice_plan_lanes FOR EACH STATEMENT EXECUTE FUNCTION evidence_kept();

INSERT INTO notice_plan_lanes (incident_id, round, lane, plan_cursor, planned_done, pages, planned)
SELECT incident_id, round, 0, plan_cursor, planned_done, pages, planned FROM notice_rounds;

-- The round keeps its total of notices planned (the sum of its lanes'); where planning
-- stands is the lanes'.
ALTER TABLE notice_rounds DROP COLUMN plan_cursor, DROP COLUMN planned_done, DROP COLUMN pages;
