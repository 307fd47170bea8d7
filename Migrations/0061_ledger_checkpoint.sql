-- Reading the ledger at scale.
--
-- `telepay ledger` sums every entry by account and asset. A checkpoint keeps those sums up to an entry
-- id, so a summary adds only the entries after it (an index range scan) to the checkpoint's balances.
-- The checkpoint is advanced under a SHARE lock on ledger_entries, which waits for every transaction that
-- inserted entries to end and admits no new ones until it commits: no entry with a smaller id can commit
-- after the checkpoint passed it.
CREATE TABLE ledger_checkpoint (
    singleton        BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    through_entry_id BIGINT NOT NULL CHECK (through_entry_id >= 0),
    taken_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO ledger_checkpoint (through_entry_id) VALUES (0);

CREATE TABLE ledger_checkpoint_balances (
    account TEXT NOT NULL,
    asset   TEXT NOT NULL,
    amount  NUMERIC NOT NULL,
    PRIMARY KEY (account, asset)
);

-- An order's entries (its buyer credit, its sale and split) are read while its payments are processed:
-- found by index, not by scanning the whole ledger.
CREATE INDEX ledger_entries_order_idx ON ledger_entries (order_id, account, asset) INCLUDE (amount) WHERE order_id IS NOT NULL;
