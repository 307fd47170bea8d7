-- Subscriber purchases: one order row per purchase (a snapshot of what was bought, so nothing about a
-- purchase lives in shared memory), subscriptions with their expiry, a double-entry ledger, the invite links
-- issued, an audit of every access decision, and the reminders sent. Numbered 0008: 0007 is reserved for
-- another branch.

-- One purchase attempt. `public_id` is what the payment provider and the return page see (our order_id):
-- random, so one buyer cannot read another's order by counting.
CREATE TABLE orders (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id       TEXT NOT NULL UNIQUE
                    DEFAULT 'tp-' || translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_')
                    CHECK (public_id ~ '^tp-[A-Za-z0-9_-]{16,32}$'),
    user_id         BIGINT NOT NULL REFERENCES telegram_users (id),
    channel_id      BIGINT NOT NULL REFERENCES channels (id),
    owner_user_id   BIGINT NOT NULL,
    tier_position   SMALLINT NOT NULL CHECK (tier_position BETWEEN 1 AND 3),
    price_usd       NUMERIC(12, 2) NOT NULL CHECK (price_usd > 0),
    duration_days   INTEGER NOT NULL CHECK (duration_days BETWEEN 1 AND 3650),
    closed_chat_id  BIGINT NOT NULL,
    closed_title    TEXT NOT NULL,
    -- created → awaiting_payment (invoice made) or invoice_failed; then the payment's progress, forward only:
    -- waiting → confirming → confirmed → sending → partially_paid → expired → failed → refunded → paid.
    status          TEXT NOT NULL DEFAULT 'created' CHECK (status IN (
                        'created', 'invoice_failed', 'awaiting_payment', 'waiting', 'confirming', 'confirmed', 'sending',
                        'partially_paid', 'expired', 'failed', 'refunded', 'paid')),
    invoice_id      TEXT CHECK (char_length(invoice_id) <= 64),
    invoice_url     TEXT CHECK (char_length(invoice_url) <= 2048),
    -- Why the last invoice attempt failed, for the operator; the user gets a localized sentence.
    invoice_error   TEXT CHECK (char_length(invoice_error) <= 2000),
    payment_id      TEXT CHECK (payment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    payment_status  TEXT,
    pay_currency    TEXT,
    pay_amount      NUMERIC(40, 18),
    actually_paid   NUMERIC(40, 18),
    paid_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);

CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC);
CREATE INDEX orders_payment_idx ON orders (payment_id) WHERE payment_id IS NOT NULL;

CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Access of one user to one channel. Renewals extend this row (from the later of now and its expiry), and
-- an expired row is reactivated by a new payment, so the expiry sweep always sees every paying member.
CREATE TABLE subscriptions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES telegram_users (id),
    channel_id     BIGINT NOT NULL REFERENCES channels (id),
    status         TEXT NOT NULL CHECK (status IN ('active', 'expired')),
    started_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    last_order_id  BIGINT NOT NULL REFERENCES orders (id),
    expired_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, channel_id),
    CHECK (expires_at > started_at)
);

CREATE INDEX subscriptions_due_idx ON subscriptions (expires_at) WHERE status = 'active';

CREATE TRIGGER subscriptions_updated_at BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Double-entry ledger in US dollars. Positive amounts are debits, negative credits; the entries of one
-- order sum to zero (checked at commit). A payment writes: the provider owes us the gross (debit
-- `provider_clearing`), the platform earns its fee (credit `platform_fee`), the owner is owed the rest
-- (credit `owner_payable`, with the owner's id): their pending payout balance, which payouts will debit.
CREATE TABLE ledger_entries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    entry          TEXT NOT NULL CHECK (entry IN ('gross', 'platform_fee', 'owner_share')),
    account        TEXT NOT NULL CHECK (account IN ('provider_clearing', 'platform_fee', 'owner_payable')),
    owner_user_id  BIGINT,
    amount_usd     NUMERIC(14, 2) NOT NULL CHECK (amount_usd <> 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (order_id, entry),
    CHECK ((account = 'owner_payable') = (owner_user_id IS NOT NULL))
);

CREATE INDEX ledger_entries_owner_idx ON ledger_entries (owner_user_id) WHERE owner_user_id IS NOT NULL;

CREATE FUNCTION ledger_entries_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total NUMERIC;
BEGIN
    SELECT coalesce(sum(amount_usd), 0) INTO total FROM ledger_entries WHERE order_id = NEW.order_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger entries of order % sum to %, not zero', NEW.order_id, total;
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balance AFTER INSERT OR UPDATE ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entries_balance();

-- What each owner is owed and not yet paid out.
CREATE VIEW owner_pending_balances AS
    SELECT owner_user_id, -sum(amount_usd) AS balance_usd
    FROM ledger_entries
    WHERE account = 'owner_payable'
    GROUP BY owner_user_id;

-- Invite links issued to subscribers. In join-request mode the link admits nobody by itself: the bot
-- approves only the subscriber. In single-use mode a non-buyer who gets in is removed.
CREATE TABLE invite_links (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    user_id         BIGINT NOT NULL,
    chat_id         BIGINT NOT NULL,
    invite_link     TEXT NOT NULL UNIQUE,
    mode            TEXT NOT NULL CHECK (mode IN ('join_request', 'single_use')),
    expires_at      TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ
);

CREATE INDEX invite_links_subscription_idx ON invite_links (subscription_id) WHERE revoked_at IS NULL;

-- Every decision about someone's access, with its outcome, for the owner and for support.
CREATE TABLE access_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id BIGINT REFERENCES subscriptions (id),
    user_id         BIGINT NOT NULL,
    chat_id         BIGINT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN (
                        'join_approved', 'join_declined', 'removed', 'not_a_member', 'remove_failed', 'kept_admin',
                        'intruder_removed', 'link_revoked')),
    detail          TEXT NOT NULL DEFAULT '' CHECK (char_length(detail) <= 2000),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX access_events_subscription_idx ON access_events (subscription_id);

-- Reminders sent, keyed by the expiry they warn about: each is sent once, and a renewal (a new expiry)
-- earns fresh ones.
CREATE TABLE subscription_reminders (
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    expires_at      TIMESTAMPTZ NOT NULL,
    days_before     INTEGER NOT NULL CHECK (days_before BETWEEN 1 AND 365),
    sent_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, expires_at, days_before)
);
