-- A conversion held for the admins (failed after funding; its exchange may still refund or pay) no longer
-- blocks the next one: at most one conversion is *active* (planned, sending or exchanging) at a time, and
-- any number may be held. The shares a held conversion took stay converting; new ones are pending and can
-- only be taken by a new conversion, so the two never share a share.
DROP INDEX conversions_one_open_idx;
CREATE UNIQUE INDEX conversions_one_active_idx ON conversions ((true)) WHERE state IN ('planned', 'sending', 'exchanging');
CREATE INDEX conversions_held_idx ON conversions (id) WHERE state = 'held';
