-- The expiry sweep's retry state per subscription (issue 12, item 7). A failed removal waits
-- removal_next_attempt_at (backing off with removal_attempts) instead of blocking the sweep's line; a user
-- the sweep banned keeps banned_at until the unban succeeds, so a renewing buyer is never left banned.
ALTER TABLE subscriptions
    ADD COLUMN removal_attempts        INTEGER NOT NULL DEFAULT 0 CHECK (removal_attempts >= 0),
    ADD COLUMN removal_next_attempt_at TIMESTAMPTZ,
    ADD COLUMN banned_at               TIMESTAMPTZ;

-- Pending unbans are found whatever the subscription's status.
CREATE INDEX subscriptions_unban_pending_idx ON subscriptions (removal_next_attempt_at) WHERE banned_at IS NOT NULL;

-- New audit actions: a join request that could not be decided for this user, a pending unban done, and a
-- subscription expired without removal because the bot can no longer act in the channel.
ALTER TABLE access_events DROP CONSTRAINT access_events_action_check;
ALTER TABLE access_events ADD CONSTRAINT access_events_action_check CHECK (action IN (
    'join_approved', 'join_declined', 'join_failed', 'removed', 'not_a_member', 'remove_failed', 'kept_admin',
    'intruder_removed', 'link_revoked', 'unbanned', 'channel_unavailable'));
