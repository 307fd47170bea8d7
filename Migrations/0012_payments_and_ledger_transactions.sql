-- Money in, per payment. A NOWPayments invoice can collect several payments (the buyer switches coin, a
-- re-deposit to the same address becomes a child payment with `parent_payment_id`), so each provider payment
-- gets its own row with its own forward-only status and what actually arrived; the order's state is derived
-- from its payments. The ledger becomes a set of balanced transactions of entries in any asset, so receipts,
-- sales, refunds and their reversals are each one transaction that sums to zero per asset.

-- Orders: `cancelled` (the channel stopped selling while the invoice was open); a refund after the grant
-- keeps `paid_at`; the money that arrived for the order; when an order with no payment stops being asked
-- about; and the next time the re-check asks the provider about it.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'created', 'invoice_failed', 'awaiting_payment', 'waiting', 'confirming', 'confirmed', 'sending',
    'partially_paid', 'expired', 'failed', 'refunded', 'paid', 'cancelled'));
ALTER TABLE orders DROP CONSTRAINT orders_check;
ALTER TABLE orders ADD CONSTRAINT orders_paid_has_time CHECK (status <> 'paid' OR paid_at IS NOT NULL);
ALTER TABLE orders ADD COLUMN received_usd NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (received_usd >= 0);
ALTER TABLE orders ADD COLUMN sold BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE orders ADD COLUMN invoice_expires_at TIMESTAMPTZ;
ALTER TABLE orders ADD COLUMN next_check_at TIMESTAMPTZ;
ALTER TABLE orders ADD COLUMN cancelled_reason TEXT CHECK (char_length(cancelled_reason) <= 200);
UPDATE orders SET sold = true WHERE status = 'paid';

CREATE INDEX orders_next_check_idx ON orders (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX orders_open_by_channel_idx ON orders (channel_id)
    WHERE status IN ('created', 'invoice_failed', 'awaiting_payment', 'waiting', 'confirming', 'confirmed', 'sending', 'partially_paid');

-- One provider payment. `value_usd` is what arrived, valued at the payment's own rate (price_amount per
-- pay_amount), rounded down to the cent; `credited_usd` is how much of it the ledger has booked. A payment
-- held for review (`review_reason`) never grants anything: it matched no order, disagreed with its order,
-- or arrived for a cancelled one.
CREATE TABLE payments (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider            TEXT NOT NULL CHECK (provider ~ '^[a-z0-9_]{1,32}$'),
    provider_payment_id TEXT NOT NULL CHECK (provider_payment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    parent_payment_id   TEXT CHECK (parent_payment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    order_id            BIGINT REFERENCES orders (id),
    order_ref           TEXT CHECK (char_length(order_ref) <= 200),
    invoice_id          TEXT CHECK (char_length(invoice_id) <= 64),
    status              TEXT NOT NULL CHECK (status IN (
                            'waiting', 'confirming', 'confirmed', 'sending', 'expired', 'failed', 'partially_paid',
                            'finished', 'refunded')),
    price_amount        NUMERIC,
    price_currency      TEXT CHECK (char_length(price_currency) <= 16),
    pay_amount          NUMERIC,
    actually_paid       NUMERIC,
    pay_currency        TEXT CHECK (char_length(pay_currency) <= 32),
    outcome_amount      NUMERIC,
    outcome_currency    TEXT CHECK (char_length(outcome_currency) <= 32),
    value_usd           NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (value_usd >= 0),
    credited_usd        NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (credited_usd >= 0),
    review_reason       TEXT CHECK (char_length(review_reason) <= 500),
    provider_updated_at TIMESTAMPTZ,
    next_check_at       TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_payment_id)
);

CREATE INDEX payments_order_idx ON payments (order_id);
CREATE INDEX payments_next_check_idx ON payments (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX payments_review_idx ON payments (id) WHERE review_reason IS NOT NULL;

CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The orders' single-payment columns move into payments rows.
INSERT INTO payments (provider, provider_payment_id, order_id, order_ref, invoice_id, status, pay_amount, actually_paid,
                      pay_currency, value_usd, credited_usd)
SELECT 'nowpayments', o.payment_id, o.id, o.public_id, o.invoice_id,
       CASE WHEN o.payment_status IN ('waiting', 'confirming', 'confirmed', 'sending', 'expired', 'failed', 'partially_paid',
                                      'finished', 'refunded') THEN o.payment_status ELSE 'waiting' END,
       o.pay_amount, o.actually_paid, o.pay_currency,
       CASE WHEN o.status = 'paid' THEN o.price_usd ELSE 0 END,
       CASE WHEN o.status = 'paid' THEN o.price_usd ELSE 0 END
FROM orders o WHERE o.payment_id IS NOT NULL;
UPDATE orders SET received_usd = price_usd WHERE status = 'paid';

DROP INDEX orders_payment_idx;
ALTER TABLE orders DROP COLUMN payment_id, DROP COLUMN payment_status, DROP COLUMN pay_currency, DROP COLUMN pay_amount,
    DROP COLUMN actually_paid;

-- Callbacks are told apart by their whole signed body, not by status: a top-up reported with the same
-- status (`partially_paid` twice) is a new callback and is processed.
ALTER TABLE payment_inbox ADD COLUMN payload_sha256 BYTEA;
UPDATE payment_inbox SET payload_sha256 = sha256(convert_to(payload, 'UTF8'));
ALTER TABLE payment_inbox ALTER COLUMN payload_sha256 SET NOT NULL;
ALTER TABLE payment_inbox DROP CONSTRAINT payment_inbox_once;
ALTER TABLE payment_inbox ADD CONSTRAINT payment_inbox_once UNIQUE (provider, payload_sha256);

-- The ledger: balanced transactions. Each has a kind, an idempotency key (the same business event books
-- once), and what it is about. `reverses` names the transaction a reversal negates. `payout` is reserved
-- for the payout engine: an owner's share leaving for their wallet.
CREATE TABLE ledger_transactions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('receipt', 'sale', 'reversal', 'payout')),
    idempotency_key TEXT NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    order_id        BIGINT REFERENCES orders (id),
    payment_id      BIGINT REFERENCES payments (id),
    reverses        BIGINT UNIQUE REFERENCES ledger_transactions (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'reversal') = (reverses IS NOT NULL))
);

CREATE INDEX ledger_transactions_order_idx ON ledger_transactions (order_id);
CREATE INDEX ledger_transactions_payment_idx ON ledger_transactions (payment_id);

-- The old view and the old per-order balance check go first (the view pins the amount's type), so rewriting the entries below queues no deferred check.
DROP VIEW owner_pending_balances;
DROP TRIGGER ledger_entries_balance ON ledger_entries;
DROP FUNCTION ledger_entries_balance();

-- Entries: an account, an asset (USD for now; settlement assets in their smallest unit later) and an exact
-- amount, positive for debits and negative for credits.
--   provider_clearing  money the provider holds for us (what buyers paid);
--   buyer_credit       money received for an order not (or no longer) delivered: owed to the buyer or to a sale;
--   payment_review     money received that matches no deliverable order, held until an operator acts;
--   payment_variance   a shortfall accepted under the tolerance (debit) or an excess kept (credit);
--   platform_fee       the platform's revenue;
--   owner_payable      what an owner is owed (with the owner's id): their pending payout balance.
ALTER TABLE ledger_entries ADD COLUMN transaction_id BIGINT REFERENCES ledger_transactions (id);
ALTER TABLE ledger_entries ADD COLUMN asset TEXT NOT NULL DEFAULT 'USD' CHECK (asset ~ '^[A-Z0-9]{2,16}$');
ALTER TABLE ledger_entries RENAME COLUMN amount_usd TO amount;
ALTER TABLE ledger_entries ALTER COLUMN amount TYPE NUMERIC;
ALTER TABLE ledger_entries ALTER COLUMN asset DROP DEFAULT;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_order_id_entry_key;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_entry_check;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check CHECK (account IN (
    'provider_clearing', 'buyer_credit', 'payment_review', 'payment_variance', 'platform_fee', 'owner_payable'));
ALTER TABLE ledger_entries ALTER COLUMN order_id DROP NOT NULL;

-- Existing bookings become one sale transaction per order.
INSERT INTO ledger_transactions (kind, idempotency_key, order_id)
SELECT 'sale', 'sale:order:' || order_id || ':1', order_id FROM ledger_entries GROUP BY order_id;
UPDATE ledger_entries e SET transaction_id = t.id FROM ledger_transactions t WHERE t.order_id = e.order_id;
ALTER TABLE ledger_entries ALTER COLUMN transaction_id SET NOT NULL;
ALTER TABLE ledger_entries DROP COLUMN entry;

CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);

-- Every transaction sums to zero in each asset, checked at commit.
CREATE FUNCTION ledger_transaction_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced RECORD;
BEGIN
    SELECT asset, sum(amount) AS total INTO unbalanced
    FROM ledger_entries WHERE transaction_id = NEW.transaction_id
    GROUP BY asset HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % sums to % % , not zero', NEW.transaction_id, unbalanced.total, unbalanced.asset;
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balance AFTER INSERT OR UPDATE ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balance();

-- Entries are never edited or deleted: corrections are reversals.
CREATE FUNCTION ledger_entries_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are never changed or deleted; book a reversal';
END;
$$;

CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_immutable();

CREATE VIEW owner_pending_balances AS
    SELECT owner_user_id, asset, -sum(amount) AS balance
    FROM ledger_entries
    WHERE account = 'owner_payable'
    GROUP BY owner_user_id, asset;
