-- A stored payment callback enqueues its processing job in the same statement, through this trigger, so the
-- IPN route's write is one round trip: no explicit transaction, no second INSERT from the application. The
-- job row is exactly what JobQueue writes for `ProcessPaymentJob` (kind, JSON payload, attempts, unique key);
-- a test compares the two, so they cannot drift apart. Workers are woken by the route after the commit.
CREATE FUNCTION payment_inbox_enqueue_processing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (kind, payload, max_attempts, unique_key)
    VALUES ('payments.process_inbox', jsonb_build_object('inboxID', NEW.id), 30, 'payment-inbox:' || NEW.id)
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running') DO NOTHING;
    RETURN NEW;
END;
$$;

CREATE TRIGGER payment_inbox_enqueue_processing AFTER INSERT ON payment_inbox
    FOR EACH ROW EXECUTE FUNCTION payment_inbox_enqueue_processing();
