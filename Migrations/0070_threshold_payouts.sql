-- Threshold payouts: owners' shares accumulate, are converted to USDT in batches, and are paid once an
-- owner's converted balance reaches their threshold.
--
-- The settlement asset (ETH) an owner earns on a threshold channel stays pending until a conversion takes
-- it; it is then `converting` (at ChangeNOW, or on its way there) until the exchange ends: finished, the
-- USDT that actually reached the hot wallet is allocated to the contributing channels and becomes their
-- pending USDT; failed or refunded, every share is pending again in ETH. USDT pending is paid like any
-- payout (`payouts` rows with asset USDT).
--
--   owner_converting  an owner's settlement-asset share taken by a conversion that has not ended.
--   operator_capital  money the operator put into the hot wallet from outside the sales (gas money),
--                     booked with `telepay ledger --record-deposit` so reconciliation can explain it.
--
-- Ledger kinds: `deposit` books operator capital; `conversion` books a conversion's plan (pending → converting) and its end (converting →
-- converted; USDT received → owners' pending USDT); `conversion_return` books shares going back to pending
-- when a conversion fails or is refunded.
--
-- `value_usd` on an owner's settlement-asset entry is what the share was worth in USD at payment time; it
-- travels with the money (a conversion or a payout that takes part of what is pending takes that part of
-- its value), so a channel's pending ETH always has a USD value to show and to count towards thresholds.

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check CHECK (account IN (
    'provider_clearing', 'hot_wallet', 'buyer_credit', 'payment_review', 'payment_variance', 'platform_fee', 'owner_payable',
    'owner_in_flight', 'network_fees', 'exchange_clearing', 'owner_converting', 'operator_capital'));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_owner_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_owner_check
    CHECK ((account IN ('owner_payable', 'owner_in_flight', 'owner_converting')) = (owner_user_id IS NOT NULL));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_owner_channel_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_owner_channel_check
    CHECK ((account IN ('owner_payable', 'owner_in_flight', 'owner_converting')) = (channel_id IS NOT NULL));
ALTER TABLE ledger_entries ADD COLUMN value_usd NUMERIC(14, 2)
    CHECK (value_usd IS NULL OR account IN ('owner_payable', 'owner_in_flight', 'owner_converting'));

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'receipt', 'sale', 'split', 'reversal', 'payout', 'conversion', 'conversion_return', 'deposit'));

-- Per owner, channel and asset: earned + received = pending + converting + in_flight + paid_out + converted.
--   converting   taken by a conversion that has not ended
--   converted    converted into another asset (the settlement asset a finished conversion took)
--   received     obtained by conversion (the USDT allocated to the channel)
--   pending_usd     the USD value at payment time of what is pending (settlement-asset rows)
--   converting_usd  ... and of what is converting
ALTER TABLE owner_balances ADD COLUMN converting NUMERIC NOT NULL DEFAULT 0;
ALTER TABLE owner_balances ADD COLUMN converted NUMERIC NOT NULL DEFAULT 0;
ALTER TABLE owner_balances ADD COLUMN received NUMERIC NOT NULL DEFAULT 0;
ALTER TABLE owner_balances ADD COLUMN pending_usd NUMERIC(14, 2) NOT NULL DEFAULT 0;
ALTER TABLE owner_balances ADD COLUMN converting_usd NUMERIC(14, 2) NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION owner_balances_follow_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind TEXT;
    earning BOOLEAN;
BEGIN
    IF NEW.account NOT IN ('owner_payable', 'owner_in_flight', 'owner_converting') THEN
        RETURN NULL;
    END IF;
    SELECT t.kind INTO kind FROM ledger_transactions t WHERE t.id = NEW.transaction_id;
    earning := kind NOT IN ('payout', 'conversion', 'conversion_return');
    INSERT INTO owner_balances AS b (owner_user_id, channel_id, asset, earned, pending, in_flight, converting, converted, received, pending_usd, converting_usd)
    VALUES (NEW.owner_user_id, NEW.channel_id, NEW.asset,
            CASE WHEN NEW.account = 'owner_payable' AND earning THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_payable' THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_in_flight' THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_converting' THEN -NEW.amount ELSE 0 END,
            -- A conversion's end debits converting: that much was converted away.
            CASE WHEN NEW.account = 'owner_converting' AND kind = 'conversion' AND NEW.amount > 0 THEN NEW.amount ELSE 0 END,
            -- ...and credits the channel's pending in the asset it was converted into.
            CASE WHEN NEW.account = 'owner_payable' AND kind = 'conversion' AND NEW.amount < 0 THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_payable' THEN -coalesce(NEW.value_usd, 0) ELSE 0 END,
            CASE WHEN NEW.account = 'owner_converting' THEN -coalesce(NEW.value_usd, 0) ELSE 0 END)
    ON CONFLICT (owner_user_id, channel_id, asset) DO UPDATE SET
        earned = b.earned + EXCLUDED.earned,
        pending = b.pending + EXCLUDED.pending,
        in_flight = b.in_flight + EXCLUDED.in_flight,
        converting = b.converting + EXCLUDED.converting,
        converted = b.converted + EXCLUDED.converted,
        received = b.received + EXCLUDED.received,
        pending_usd = b.pending_usd + EXCLUDED.pending_usd,
        converting_usd = b.converting_usd + EXCLUDED.converting_usd,
        updated_at = now();
    RETURN NULL;
END;
$$;

-- What pending settlement-asset money was worth at payment time, for the money booked before this
-- migration: the channel's pending valued at the rate of everything it earned (its sales' USD owner shares
-- over its settlement-asset shares).
UPDATE owner_balances b SET pending_usd = round(b.pending * u.earned / b.earned, 2)
FROM owner_balances u
WHERE u.owner_user_id = b.owner_user_id AND u.channel_id = b.channel_id AND u.asset = 'USD'
  AND b.asset <> 'USD' AND b.earned > 0 AND b.pending > 0;

-- A batch conversion of threshold owners' pending settlement asset into USDT, paid to the hot wallet itself.
--   planned     recorded, the parts moved from pending to converting; nothing outside touched yet
--   sending     the exchange was created and checked, the hot wallet's transfer to its pay-in address recorded
--   exchanging  that transfer is final; waiting for ChangeNOW to send the USDT
--   held        the exchange failed after it was funded: the money is at ChangeNOW until it refunds
--   converted   the USDT reached the hot wallet and is allocated to the parts (received_units, on the chain)
--   failed      ended without moving money, or with the refund back in the hot wallet: every part is pending again
CREATE TABLE conversions (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state              TEXT NOT NULL CHECK (state IN ('planned', 'sending', 'exchanging', 'held', 'converted', 'failed')),
    from_asset         TEXT NOT NULL CHECK (from_asset ~ '^[A-Z0-9]{2,16}$'),
    from_units         NUMERIC(78, 0) NOT NULL CHECK (from_units > 0),
    to_asset           TEXT NOT NULL CHECK (to_asset ~ '^[A-Z0-9]{2,16}$'),
    value_usd          NUMERIC(14, 2) NOT NULL CHECK (value_usd >= 0),
    exchange_intent_id BIGINT UNIQUE REFERENCES exchange_intents (id),
    estimated_units    NUMERIC(78, 0) CHECK (estimated_units >= 0),
    -- What ChangeNOW said it sent, and what the hot wallet actually received on the chain (what is booked).
    reported_units     NUMERIC(78, 0) CHECK (reported_units >= 0),
    received_units     NUMERIC(78, 0) CHECK (received_units >= 0),
    payout_hash        TEXT CHECK (char_length(payout_hash) <= 200),
    gas_units          NUMERIC(78, 0) CHECK (gas_units >= 0),
    refund_units       NUMERIC(78, 0) CHECK (refund_units >= 0),
    failure            TEXT CHECK (char_length(failure) <= 2000),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at           TIMESTAMPTZ,
    CHECK (state <> 'converted' OR received_units IS NOT NULL),
    CHECK (state IN ('planned', 'failed') OR exchange_intent_id IS NOT NULL)
);
-- One conversion at a time.
CREATE UNIQUE INDEX conversions_one_open_idx ON conversions ((true)) WHERE state IN ('planned', 'sending', 'exchanging', 'held');
CREATE TRIGGER conversions_updated_at BEFORE UPDATE ON conversions FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- What each channel put into a conversion and what it got: allocated_units sum exactly to the conversion's
-- received_units (largest remainder over from_units).
CREATE TABLE conversion_parts (
    conversion_id   BIGINT NOT NULL REFERENCES conversions (id),
    owner_user_id   BIGINT NOT NULL,
    channel_id      BIGINT NOT NULL REFERENCES channels (id),
    from_units      NUMERIC(78, 0) NOT NULL CHECK (from_units > 0),
    value_usd       NUMERIC(14, 2) NOT NULL CHECK (value_usd >= 0),
    allocated_units NUMERIC(78, 0) CHECK (allocated_units >= 0),
    PRIMARY KEY (conversion_id, channel_id)
);
CREATE INDEX conversion_parts_channel_idx ON conversion_parts (channel_id, conversion_id DESC);

-- The payout that pays a part's USDT: set when the payout is planned (it takes the channel's whole pending
-- USDT, which is the sum of its unpaid parts), cleared when that payout fails (the parts are pending again).
ALTER TABLE conversion_parts ADD COLUMN payout_id BIGINT REFERENCES payouts (id);
CREATE INDEX conversion_parts_unpaid_idx ON conversion_parts (channel_id) WHERE payout_id IS NULL;

-- The USD value (at payment time) of what a payout took from pending: given back to pending with the
-- amount when the payout fails.
ALTER TABLE payouts ADD COLUMN value_usd NUMERIC(14, 2) CHECK (value_usd >= 0);
