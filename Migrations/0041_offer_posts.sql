-- The offer post in each pair's public channel: one message with the titles, the descriptions and a button
-- per enabled tier, re-posted when the offer changes, when sales resume, on the owner's request and every
-- refresh interval. Sources/Bot/Channels/OfferPostStore.swift holds every query of these tables.

-- The language the channel's posts are written in (the owner's choice in the form).
ALTER TABLE channels ADD COLUMN post_language TEXT NOT NULL DEFAULT 'en' CHECK (post_language ~ '^[a-z]{2,3}$');

CREATE TABLE channel_offer_posts (
    channel_id           BIGINT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    -- The post now in the open channel (NULL: none, or it was deleted before a failed attempt).
    message_id           BIGINT CHECK (message_id > 0),
    posted_at            TIMESTAMPTZ,
    -- Text and buttons of that post, so a save that changes nothing in it does not re-post.
    posted_content       TEXT,
    -- When the next automatic attempt is due; NULL while automatic posting is stopped.
    next_post_at         TIMESTAMPTZ,
    -- A post the owner asked for (or resuming sales), done whatever the content and the schedule.
    forced_at            TIMESTAMPTZ,
    -- The owner's last "post now", for the cooldown.
    manual_requested_at  TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_failure         TEXT CHECK (last_failure IN ('no_post_right', 'bot_removed', 'chat_not_found', 'rejected')),
    last_failure_detail  TEXT,
    last_failure_at      TIMESTAMPTZ,
    -- Automatic posting stopped after too many consecutive failures, until the owner posts by hand.
    stopped_at           TIMESTAMPTZ,
    -- Held by the attempt in progress, so two jobs for one channel never post twice; expires for a crashed one.
    attempt_lease_until  TIMESTAMPTZ,
    CHECK ((last_failure IS NULL) = (last_failure_at IS NULL)),
    CHECK (stopped_at IS NULL OR next_post_at IS NULL)
);

CREATE INDEX channel_offer_posts_due_idx ON channel_offer_posts (next_post_at) WHERE stopped_at IS NULL;

-- Every attempt, with the messages it deleted and posted.
CREATE TABLE channel_offer_post_attempts (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id         BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    chat_id            BIGINT NOT NULL,
    attempted_at       TIMESTAMPTZ NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('posted', 'failed')),
    deleted_message_id BIGINT,
    posted_message_id  BIGINT,
    failure            TEXT CHECK (failure IN ('no_post_right', 'bot_removed', 'chat_not_found', 'rejected')),
    failure_detail     TEXT,
    CHECK ((outcome = 'posted') = (posted_message_id IS NOT NULL)),
    CHECK ((outcome = 'failed') = (failure IS NOT NULL))
);

CREATE INDEX channel_offer_post_attempts_channel_idx ON channel_offer_post_attempts (channel_id, id);
