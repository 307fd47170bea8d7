-- Instant payouts paid straight from the hot wallet: each sold order's owner share, in the settlement asset,
-- becomes a payout to the owner's wallet when the owner takes instant payouts in that asset on its own
-- network (ETH on Ethereum), recorded before the transfer is made. Owners paid in other coins need ChangeNOW,
-- which is not wired in yet; their shares stay pending.
--   owner_in_flight  an owner's share on its way (a transfer submitted, not yet confirmed)
--   network_fees     gas the hot wallet spent on payouts (the platform's expense)
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check CHECK (account IN (
    'provider_clearing', 'hot_wallet', 'buyer_credit', 'payment_review', 'payment_variance', 'platform_fee', 'owner_payable',
    'owner_in_flight', 'network_fees'));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_owner_check
    CHECK ((account IN ('owner_payable', 'owner_in_flight')) = (owner_user_id IS NOT NULL));

-- One payout of one split's owner share.
--   planned   recorded, its share moved to in flight; no transfer yet
--   sending   the hot-wallet transfer `payout:<id>` is recorded (and is being signed, sent, confirmed)
--   paid      the transfer is confirmed at depth: the share left the wallet
--   failed    the transfer ended without moving the value; the share went back to pending
CREATE TABLE payouts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    split_id       BIGINT NOT NULL REFERENCES ledger_transactions (id),
    owner_user_id  BIGINT NOT NULL,
    channel_id     BIGINT NOT NULL REFERENCES channels (id),
    asset          TEXT NOT NULL CHECK (asset ~ '^[A-Z0-9]{2,16}$'),
    amount         NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    currency_code  TEXT NOT NULL,
    network_code   TEXT NOT NULL,
    wallet_address TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('planned', 'sending', 'paid', 'failed')),
    failure        TEXT CHECK (char_length(failure) <= 2000),
    gas_units      NUMERIC(78, 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at        TIMESTAMPTZ
);

-- A share is paid by at most one payout that has not failed.
CREATE UNIQUE INDEX payouts_one_live_per_split_idx ON payouts (split_id) WHERE state <> 'failed';
CREATE INDEX payouts_open_idx ON payouts (id) WHERE state IN ('planned', 'sending');

CREATE TRIGGER payouts_updated_at BEFORE UPDATE ON payouts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
