-- A broadcast whose outcome is unknown (a timeout, a dropped connection, a gateway error): a node may hold
-- the bytes and mine them later, so the attempt's nonce is never released for another transaction; the
-- transfer waits until these bytes are acknowledged or mined, or the chain passes the nonce with a
-- transaction that is not ours (issue 12, item 9).
ALTER TABLE wallet_transfer_attempts ADD COLUMN unanswered_broadcast_at TIMESTAMPTZ;
