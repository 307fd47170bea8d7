-- Settlement is money too: NOWPayments converts each payment into the settlement asset (ETH) and sends it
-- to the hot wallet. For each finished payment the ledger books what reached the wallet, in wei, and a sold
-- order's settled wei is split into the platform's fee and the owner's share (largest remainder, to the wei).
--   hot_wallet  what the hot wallet received (debit) — reconciled with the chain.
--   split       a sold order's settled wei divided into platform_fee and owner_payable.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check CHECK (account IN (
    'provider_clearing', 'hot_wallet', 'buyer_credit', 'payment_review', 'payment_variance', 'platform_fee', 'owner_payable'));

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'receipt', 'sale', 'split', 'reversal', 'payout'));

-- How much of the payment's outcome (in the settlement asset's smallest unit) the ledger has booked.
ALTER TABLE payments ADD COLUMN settled_units NUMERIC(78, 0) NOT NULL DEFAULT 0 CHECK (settled_units >= 0);
