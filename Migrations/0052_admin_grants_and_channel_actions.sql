-- Admin tools: access granted without an order, channels paused or resumed by an admin with a reason, and
-- the indexes the admin's money figures read.

-- An admin may grant access to someone who never ordered: such a subscription has no order behind it.
ALTER TABLE subscriptions ALTER COLUMN last_order_id DROP NOT NULL;

-- A grant names the channel and the days; its subscription is known once the grant is made.
ALTER TABLE admin_access_actions DROP CONSTRAINT admin_access_actions_action_check;
ALTER TABLE admin_access_actions ADD CONSTRAINT admin_access_actions_action_check CHECK (action IN ('extend', 'revoke', 'grant'));
ALTER TABLE admin_access_actions DROP CONSTRAINT admin_access_actions_check;
ALTER TABLE admin_access_actions ADD CONSTRAINT admin_access_actions_days_shape CHECK ((action IN ('extend', 'grant')) = (days IS NOT NULL));
ALTER TABLE admin_access_actions ALTER COLUMN subscription_id DROP NOT NULL;
ALTER TABLE admin_access_actions ADD COLUMN channel_id BIGINT REFERENCES channels (id);
ALTER TABLE admin_access_actions ADD CONSTRAINT admin_access_actions_target_check
    CHECK (CASE WHEN action = 'grant' THEN channel_id IS NOT NULL AND (status <> 'done' OR subscription_id IS NOT NULL)
                ELSE subscription_id IS NOT NULL END);

-- Sales paused by an admin: only an admin resumes them.
ALTER TABLE channels DROP CONSTRAINT channels_paused_reason_check;
ALTER TABLE channels ADD CONSTRAINT channels_paused_reason_check CHECK (paused_reason IN ('owner', 'bot_removed', 'bot_rights', 'admin'));

-- An admin's pause or resume of a channel: written when the admin asks (awaiting the reason they must give)
-- and completed in the transaction that changes the channel; the owner is told the reason.
CREATE TABLE admin_channel_actions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_user_id  BIGINT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('pause', 'resume')),
    channel_id     BIGINT NOT NULL REFERENCES channels (id),
    status         TEXT NOT NULL DEFAULT 'awaiting_reason' CHECK (status IN ('awaiting_reason', 'done', 'cancelled')),
    reason         TEXT CHECK (char_length(reason) BETWEEN 3 AND 500),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at        TIMESTAMPTZ,
    CHECK ((status = 'done') = (reason IS NOT NULL AND done_at IS NOT NULL))
);

CREATE INDEX admin_channel_actions_waiting_idx ON admin_channel_actions (admin_user_id) WHERE status = 'awaiting_reason';
CREATE INDEX admin_channel_actions_channel_idx ON admin_channel_actions (channel_id, created_at DESC);

-- Revenue by period (admin stats) from the index alone: paid orders by payment time with their price.
CREATE INDEX orders_paid_revenue_idx ON orders (paid_at) INCLUDE (price_usd) WHERE status = 'paid';

-- The platform's fees by period (admin stats) without reading every ledger entry.
CREATE INDEX ledger_entries_platform_fee_time_idx ON ledger_entries (created_at) INCLUDE (asset, amount) WHERE account = 'platform_fee';

-- A channel's exports read its orders and subscriptions in id order (keyset batches).
CREATE INDEX orders_channel_idx ON orders (channel_id, id);
CREATE INDEX subscriptions_channel_idx ON subscriptions (channel_id, id);

-- An owner who chose "expired in the last N days" and is asked to type N: one open question per person.
CREATE TABLE broadcast_audience_prompts (
    user_id     BIGINT PRIMARY KEY REFERENCES telegram_users (id) ON DELETE CASCADE,
    channel_id  BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
