-- A notice claimed by an attempt that never recorded SendGrid's answer is in doubt until
-- its delivery events or a grace window settle it; one sent again after the window is
-- marked a possible duplicate, for evidence and metrics.
ALTER TABLE notices ADD COLUMN possible_duplicate boolean NOT NULL DEFAULT false;
