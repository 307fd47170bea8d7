-- What the exchange status poller learns from ChangeNOW's by-id, kept on the intent that recorded the
-- exchange, and the record of alerts already sent to admins in Telegram.
--
-- 0007 and 0008 are reserved for work on other branches; the runner accepts gaps in the numbering.

-- Amounts are ChangeNOW's (actual, once known); the timestamps are ChangeNOW's createdAt/updatedAt and
-- ours: when we last read the status, and when we first saw the current one.
ALTER TABLE exchange_intents
    ADD COLUMN amount_from          NUMERIC(38, 18),
    ADD COLUMN amount_to            NUMERIC(38, 18),
    ADD COLUMN payin_hash           TEXT,
    ADD COLUMN payout_hash          TEXT,
    ADD COLUMN refund_hash          TEXT,
    ADD COLUMN refund_amount        NUMERIC(38, 18),
    ADD COLUMN exchange_created_at  TIMESTAMPTZ,
    ADD COLUMN exchange_updated_at  TIMESTAMPTZ,
    ADD COLUMN status_checked_at    TIMESTAMPTZ,
    ADD COLUMN status_changed_at    TIMESTAMPTZ,
    -- Set when an admin was told the exchange sits in `verifying` too long; cleared when it leaves it.
    ADD COLUMN verifying_alerted_at TIMESTAMPTZ;

-- The poller's work list: recorded exchanges not yet in a final status, least recently read first.
CREATE INDEX exchange_intents_tracking_idx ON exchange_intents (status_checked_at NULLS FIRST, id)
    WHERE exchange_id IS NOT NULL AND (exchange_status IS NULL OR exchange_status NOT IN ('finished', 'failed', 'refunded'));

-- A final status is final: a late or stale answer cannot reopen a finished, failed or refunded exchange.
-- (The poller also refuses backward moves between the other statuses; this is the database's backstop.)
CREATE FUNCTION exchange_intents_final_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.exchange_status IN ('finished', 'failed', 'refunded')
       AND NEW.exchange_status IS DISTINCT FROM OLD.exchange_status THEN
        RAISE EXCEPTION 'exchange % of intent % is already %; it cannot become %',
            OLD.exchange_id, OLD.id, OLD.exchange_status, NEW.exchange_status;
    END IF;
    IF OLD.state IN ('finished', 'failed', 'refunded') AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'exchange intent % is already %; it cannot become %', OLD.id, OLD.state, NEW.state;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER exchange_intents_final_status BEFORE UPDATE ON exchange_intents
    FOR EACH ROW EXECUTE FUNCTION exchange_intents_final_status();

-- One row per alert and admin chat: an alert raised twice (a retry, a second instance) is sent once.
-- job_id names the Telegram send job, so a failure of that job is logged instead of alerted again.
CREATE TABLE admin_alerts (
    alert_key  TEXT NOT NULL CHECK (char_length(alert_key) BETWEEN 1 AND 200),
    chat_id    BIGINT NOT NULL CHECK (chat_id > 0),
    job_id     BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_key, chat_id)
);

CREATE INDEX admin_alerts_job_idx ON admin_alerts (job_id) WHERE job_id IS NOT NULL;
