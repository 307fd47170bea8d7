-- Broadcasts: one message sent to many people, by an admin to every bot user or every owner, or by an owner
-- to an audience of one of their channels. The audience is resolved once, when the broadcast starts, into
-- one recipient row per person; the sender works through those rows.
CREATE TABLE broadcasts (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_user_id       BIGINT NOT NULL REFERENCES telegram_users (id),
    -- The language the author's progress message and report are written in.
    author_language      TEXT NOT NULL CHECK (author_language ~ '^[a-z]{2,3}$'),
    audience             TEXT NOT NULL CHECK (audience IN (
                             'all_users', 'all_owners', 'channel_active', 'channel_expired', 'channel_paid')),
    channel_id           BIGINT REFERENCES channels (id),
    audience_days        INTEGER CHECK (audience_days BETWEEN 1 AND 365),
    -- Telegram's HTML subset, checked before it is stored; empty while the author is still composing.
    text                 TEXT NOT NULL DEFAULT '' CHECK (char_length(text) <= 20000),
    status               TEXT NOT NULL DEFAULT 'composing' CHECK (status IN (
                             'composing', 'ready', 'running', 'paused', 'cancelled', 'finished')),
    progress_chat_id     BIGINT NOT NULL,
    progress_message_id  BIGINT,
    recipients_total     INTEGER NOT NULL DEFAULT 0,
    -- Recipients whose send was in flight when a run stopped without recording it (a crash), and who were
    -- therefore sent to again: the bound on duplicates, measured.
    resent_after_restart INTEGER NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at           TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    CHECK ((channel_id IS NULL) = (audience IN ('all_users', 'all_owners'))),
    CHECK ((audience_days IS NOT NULL) = (audience = 'channel_expired')),
    CHECK (status IN ('composing', 'ready', 'cancelled') OR started_at IS NOT NULL),
    CHECK (status NOT IN ('composing', 'ready') OR started_at IS NULL),
    CHECK ((status IN ('cancelled', 'finished')) = (finished_at IS NOT NULL))
);

-- At most one broadcast per channel is on its way (running or paused) at a time.
CREATE UNIQUE INDEX broadcasts_one_live_per_channel_idx ON broadcasts (channel_id)
    WHERE status IN ('running', 'paused') AND channel_id IS NOT NULL;
-- The owner's daily cap counts their broadcasts started in the last 24 hours.
CREATE INDEX broadcasts_author_started_idx ON broadcasts (author_user_id, started_at) WHERE started_at IS NOT NULL;
-- The author's draft in progress (the next text they send becomes its message).
CREATE INDEX broadcasts_author_drafts_idx ON broadcasts (author_user_id) WHERE status IN ('composing', 'ready');

CREATE TABLE broadcast_recipients (
    broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL,
    -- pending → sending (committed before the call to Telegram) → sent | blocked | failed;
    -- sending → pending again when a run finds it left over from a crash, or the send must wait.
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'blocked', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reason       TEXT CHECK (char_length(reason) <= 500),
    finished_at  TIMESTAMPTZ,
    PRIMARY KEY (broadcast_id, user_id),
    CHECK ((status IN ('sent', 'blocked', 'failed')) = (finished_at IS NOT NULL))
);

CREATE INDEX broadcast_recipients_waiting_idx ON broadcast_recipients (broadcast_id, user_id)
    WHERE status IN ('pending', 'sending');

-- The admin's statistics read revenue by payment time and subscriptions by start and end; these keep
-- those reads on indexes as orders grow.
CREATE INDEX orders_paid_at_idx ON orders (paid_at) WHERE status = 'paid';
CREATE INDEX subscriptions_started_at_idx ON subscriptions (started_at);
CREATE INDEX subscriptions_expired_at_idx ON subscriptions (expires_at) WHERE status = 'expired';
