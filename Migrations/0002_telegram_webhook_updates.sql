-- Updates received through the Telegram webhook, stored before the HTTP answer so none is lost if the
-- process dies before handling it. The primary key drops Telegram's re-sends of the same update.
CREATE TABLE telegram_webhook_updates (
    update_id   BIGINT PRIMARY KEY CHECK (update_id >= 0),
    payload     JSONB NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    handled_at  TIMESTAMPTZ
);

CREATE INDEX telegram_webhook_updates_pending_idx ON telegram_webhook_updates (update_id) WHERE handled_at IS NULL;
