-- Payment-provider callbacks (NOWPayments IPNs), stored after their signature is verified and before the
-- HTTP answer, so none is lost if the process dies before processing it. One row per provider, payment
-- and status: the provider re-sends on errors and may send the same status twice, and those repeats are
-- no-ops. A row is processed once: the processor sets processed_at in the same transaction as its effects.
CREATE TABLE payment_inbox (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider          TEXT NOT NULL CHECK (provider ~ '^[a-z0-9_]{1,32}$'),
    payment_id        TEXT NOT NULL CHECK (payment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    payment_status    TEXT NOT NULL CHECK (payment_status ~ '^[a-z_]{1,32}$'),
    order_id          TEXT CHECK (char_length(order_id) <= 200),
    invoice_id        TEXT CHECK (char_length(invoice_id) <= 64),
    -- Which serialisation the signature matched (external-apis.md §2.6); tells us what the provider uses.
    signature_variant TEXT NOT NULL CHECK (signature_variant <> ''),
    -- The body exactly as received (TEXT, not JSONB, which would reorder keys and lose number literals),
    -- so the signature can be re-checked later.
    payload           TEXT NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at      TIMESTAMPTZ,
    CONSTRAINT payment_inbox_once UNIQUE (provider, payment_id, payment_status)
);

CREATE INDEX payment_inbox_unprocessed_idx ON payment_inbox (id) WHERE processed_at IS NULL;
