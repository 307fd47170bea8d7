-- Payouts through ChangeNOW, and owner balances per channel.
--
-- An owner's payout settings (wallet, coin, network) belong to a channel, so what an owner is owed is
-- tracked per channel: owner entries of the ledger name their channel, and `owner_balances` keeps, per
-- owner, channel and asset, what they earned (splits and sales net of reversals), what is pending (owed,
-- not yet on its way), in flight (a payout is moving it) and paid out. The ledger's owner entries maintain
-- the first three by trigger, in the transaction that books them; the payout that reaches the owner adds
-- to paid out in the same transaction. earned = pending + in flight + paid out.
--
--   exchange_clearing  the settlement asset sent to a ChangeNOW exchange that has not finished (or been
--                      refunded) yet: the money is at the exchange, no longer in the hot wallet.

ALTER TABLE ledger_entries ADD COLUMN channel_id BIGINT REFERENCES channels (id);

-- Filling in the new column is not a change of what was booked: the immutability and balance triggers
-- stay out of it (the balance trigger's deferred events would also block the ALTERs below).
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_immutable;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_balance;
UPDATE ledger_entries e SET channel_id = o.channel_id
FROM orders o
WHERE e.order_id = o.id AND e.account IN ('owner_payable', 'owner_in_flight');
UPDATE ledger_entries e SET channel_id = p.channel_id
FROM ledger_transactions t, payouts p
WHERE e.transaction_id = t.id AND e.channel_id IS NULL AND e.account IN ('owner_payable', 'owner_in_flight')
  AND t.kind = 'payout' AND t.idempotency_key ~ '^payout:[0-9]+:' AND p.id = split_part(t.idempotency_key, ':', 2)::bigint;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_balance;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_immutable;

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check CHECK (account IN (
    'provider_clearing', 'hot_wallet', 'buyer_credit', 'payment_review', 'payment_variance', 'platform_fee', 'owner_payable',
    'owner_in_flight', 'network_fees', 'exchange_clearing'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_owner_channel_check
    CHECK ((account IN ('owner_payable', 'owner_in_flight')) = (channel_id IS NOT NULL));

CREATE TABLE owner_balances (
    owner_user_id BIGINT NOT NULL,
    channel_id    BIGINT NOT NULL REFERENCES channels (id),
    asset         TEXT NOT NULL CHECK (asset ~ '^[A-Z0-9]{2,16}$'),
    earned        NUMERIC NOT NULL DEFAULT 0,
    pending       NUMERIC NOT NULL DEFAULT 0,
    in_flight     NUMERIC NOT NULL DEFAULT 0,
    paid_out      NUMERIC NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_user_id, channel_id, asset)
);
-- The planner's work list: channels with something pending.
CREATE INDEX owner_balances_pending_idx ON owner_balances (channel_id, asset) WHERE pending <> 0;

INSERT INTO owner_balances (owner_user_id, channel_id, asset, earned, pending, in_flight)
SELECT e.owner_user_id, e.channel_id, e.asset,
       -coalesce(sum(e.amount) FILTER (WHERE e.account = 'owner_payable' AND t.kind <> 'payout'), 0),
       -coalesce(sum(e.amount) FILTER (WHERE e.account = 'owner_payable'), 0),
       -coalesce(sum(e.amount) FILTER (WHERE e.account = 'owner_in_flight'), 0)
FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE e.account IN ('owner_payable', 'owner_in_flight')
GROUP BY e.owner_user_id, e.channel_id, e.asset;
UPDATE owner_balances b SET paid_out = p.total
FROM (SELECT owner_user_id, channel_id, asset, sum(amount) AS total FROM payouts WHERE state = 'paid' GROUP BY 1, 2, 3) p
WHERE b.owner_user_id = p.owner_user_id AND b.channel_id = p.channel_id AND b.asset = p.asset;

CREATE FUNCTION owner_balances_follow_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    is_payout BOOLEAN;
BEGIN
    IF NEW.account NOT IN ('owner_payable', 'owner_in_flight') THEN
        RETURN NULL;
    END IF;
    SELECT kind = 'payout' INTO is_payout FROM ledger_transactions WHERE id = NEW.transaction_id;
    INSERT INTO owner_balances AS b (owner_user_id, channel_id, asset, earned, pending, in_flight)
    VALUES (NEW.owner_user_id, NEW.channel_id, NEW.asset,
            CASE WHEN NEW.account = 'owner_payable' AND NOT is_payout THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_payable' THEN -NEW.amount ELSE 0 END,
            CASE WHEN NEW.account = 'owner_in_flight' THEN -NEW.amount ELSE 0 END)
    ON CONFLICT (owner_user_id, channel_id, asset) DO UPDATE SET
        earned = b.earned + EXCLUDED.earned,
        pending = b.pending + EXCLUDED.pending,
        in_flight = b.in_flight + EXCLUDED.in_flight,
        updated_at = now();
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_entries_owner_balances AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION owner_balances_follow_ledger();

-- Payouts: one per channel at a time, covering what was pending when it was planned (the channel's shares
-- since the last payout, plus anything carried over: a balance below the exchange's minimum, or the wei
-- below the exchange's 8-decimal precision). `split_id` names the share of payouts planned per split
-- before this migration.
--   route       direct: a hot-wallet transfer of the settlement asset to the owner's wallet;
--               exchange: a ChangeNOW exchange funded by a hot-wallet transfer to its pay-in address
--   planned     recorded, the amount moved from pending to in flight; nothing outside touched yet
--   sending     the hot-wallet transfer is recorded (direct: to the owner; exchange: to the exchange's
--               pay-in address, after the exchange was created and checked)
--   exchanging  the transfer to the exchange is final; waiting for ChangeNOW to pay the owner
--   held        the exchange failed after it was funded: the money is at ChangeNOW until it refunds
--   paid        the owner has the money (direct: transfer final; exchange: `finished`, with amount_to
--               and payout_hash)
--   failed      ended without moving money, or with the refund back in the hot wallet; the amount is
--               pending again. The channel gets no new payout until the owner changes the wallet (when
--               the failure is theirs to fix) or an operator releases it (`telepay payouts retry`).
ALTER TABLE payouts ALTER COLUMN split_id DROP NOT NULL;
ALTER TABLE payouts DROP CONSTRAINT payouts_state_check;
ALTER TABLE payouts ADD CONSTRAINT payouts_state_check
    CHECK (state IN ('planned', 'sending', 'exchanging', 'held', 'paid', 'failed'));
ALTER TABLE payouts ADD COLUMN route TEXT NOT NULL DEFAULT 'direct' CHECK (route IN ('direct', 'exchange'));
ALTER TABLE payouts ALTER COLUMN route DROP DEFAULT;
ALTER TABLE payouts ADD COLUMN wallet_memo TEXT CHECK (char_length(wallet_memo) BETWEEN 1 AND 64);
ALTER TABLE payouts ADD COLUMN exchange_intent_id BIGINT UNIQUE REFERENCES exchange_intents (id);
ALTER TABLE payouts ADD COLUMN estimated_to NUMERIC CHECK (estimated_to > 0);
ALTER TABLE payouts ADD COLUMN amount_to NUMERIC CHECK (amount_to >= 0);
ALTER TABLE payouts ADD COLUMN payout_hash TEXT CHECK (char_length(payout_hash) <= 200);
ALTER TABLE payouts ADD COLUMN refund_units NUMERIC(78, 0) CHECK (refund_units >= 0);
-- The failure is the owner's to fix (ChangeNOW rejected their wallet).
ALTER TABLE payouts ADD COLUMN owner_fixable BOOLEAN NOT NULL DEFAULT false;
-- An operator allowed the channel's next payout after this failure.
ALTER TABLE payouts ADD COLUMN released_at TIMESTAMPTZ;
ALTER TABLE payouts ADD CONSTRAINT payouts_released_only_failed CHECK (released_at IS NULL OR state = 'failed');
ALTER TABLE payouts ADD CONSTRAINT payouts_exchange_has_intent
    CHECK (route = 'direct' OR state IN ('planned', 'failed') OR exchange_intent_id IS NOT NULL);

DROP INDEX payouts_open_idx;
CREATE INDEX payouts_open_idx ON payouts (state, id) WHERE state IN ('planned', 'sending', 'exchanging', 'held');
CREATE INDEX payouts_channel_idx ON payouts (channel_id, id DESC);
CREATE INDEX payouts_owner_idx ON payouts (owner_user_id, id DESC);
