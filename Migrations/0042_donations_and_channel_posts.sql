-- Donations, the donation post in the private channel, and posts that follow the owner's settings.
-- Sources/Subscriptions/Donations.swift holds the queries of `donation_keypads` and donation orders;
-- Sources/Bot/Channels/OfferPostStore.swift every query of `channel_offer_posts` and its attempts.

-- An order is a subscription purchase (a tier, a duration) or a donation (an amount the donor typed, no
-- tier, no duration: it grants nothing).
ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'subscription' CHECK (kind IN ('subscription', 'donation'));
ALTER TABLE orders ALTER COLUMN tier_position DROP NOT NULL;
ALTER TABLE orders ALTER COLUMN duration_days DROP NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_kind_shape
    CHECK ((kind = 'subscription') = (tier_position IS NOT NULL AND duration_days IS NOT NULL));

-- The amounts a donor may give, in US dollars (the owner may narrow them).
ALTER TABLE channels ADD COLUMN donation_min_usd NUMERIC(12, 2) NOT NULL DEFAULT 4.99;
ALTER TABLE channels ADD COLUMN donation_max_usd NUMERIC(12, 2) NOT NULL DEFAULT 9999.99;
ALTER TABLE channels ADD CONSTRAINT channels_donation_range
    CHECK (donation_min_usd >= 0.01 AND donation_max_usd <= 9999.99 AND donation_min_usd <= donation_max_usd);

-- One keypad per donor: the message it is drawn in and the amount typed so far. A press on any other
-- message is outdated; presses of one user are handled in order, so quick typing loses no digit.
CREATE TABLE donation_keypads (
    user_id     BIGINT PRIMARY KEY REFERENCES telegram_users (id) ON DELETE CASCADE,
    channel_id  BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    chat_id     BIGINT NOT NULL,
    message_id  BIGINT CHECK (message_id > 0),
    amount      TEXT NOT NULL DEFAULT '' CHECK (amount ~ '^([1-9][0-9]{0,3}|0)?(\.[0-9]{0,2})?$'),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each pair has two posts: the offer in the public channel and the donation post in the private one. Both
-- run through the same attempts, refresh, cooldown and failure counting.
ALTER TABLE channel_offer_posts ADD COLUMN kind TEXT NOT NULL DEFAULT 'offer' CHECK (kind IN ('offer', 'donation'));
ALTER TABLE channel_offer_posts DROP CONSTRAINT channel_offer_posts_pkey;
ALTER TABLE channel_offer_posts ADD PRIMARY KEY (channel_id, kind);
-- The post was edited to say sales are paused (its buttons removed); resuming posts it anew.
ALTER TABLE channel_offer_posts ADD COLUMN paused_at TIMESTAMPTZ;
ALTER TABLE channel_offer_post_attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'offer' CHECK (kind IN ('offer', 'donation'));
ALTER TABLE channel_offer_post_attempts DROP CONSTRAINT channel_offer_post_attempts_outcome_check;
ALTER TABLE channel_offer_post_attempts ADD CONSTRAINT channel_offer_post_attempts_outcome_check
    CHECK (outcome IN ('posted', 'failed', 'paused'));
ALTER TABLE channel_offer_post_attempts DROP CONSTRAINT channel_offer_post_attempts_check;
ALTER TABLE channel_offer_post_attempts ADD CONSTRAINT channel_offer_post_attempts_posted_has_message
    CHECK ((outcome = 'failed') = (posted_message_id IS NULL));
