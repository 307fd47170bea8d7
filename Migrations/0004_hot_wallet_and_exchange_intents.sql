-- The hot wallet's outgoing transfers and the exchange orders they fund.
--
-- Every external side effect is recorded here before it happens: a transfer's signed bytes, hash and
-- nonce are stored before broadcast (so a restart re-sends the same bytes), and an exchange intent and
-- each create attempt are stored before ChangeNOW is called.
-- Amounts on chain are integers of the smallest unit (wei, token base units) in NUMERIC(78, 0), which
-- holds any uint256.

-- One row per hot wallet. next_nonce is one past the highest nonce TelePay assigned; nonces are only
-- assigned while holding the wallet's advisory lock.
CREATE TABLE wallet_accounts (
    address    TEXT PRIMARY KEY CHECK (address ~ '^0x[0-9a-fA-F]{40}$'),
    chain_id   BIGINT NOT NULL CHECK (chain_id > 0),
    next_nonce BIGINT NOT NULL DEFAULT 0 CHECK (next_nonce >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TRIGGER wallet_accounts_updated_at BEFORE UPDATE ON wallet_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A transfer out of the hot wallet, keyed by the caller's idempotency key.
--   queued     recorded, no nonce yet
--   signed     nonce assigned and at least one signed attempt stored; no node has acknowledged it yet
--   broadcast  a node accepted an attempt (or already had it)
--   mined      a receipt exists for one of its attempts; waiting for the confirmation depth
--   confirmed  succeeded at depth (final)
--   reverted   mined at depth with status 0: the nonce and gas are spent, the value did not move (final)
--   failed     never reached the chain and never will: no nonce is held (final)
CREATE TABLE wallet_transfers (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key     TEXT NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    wallet_address      TEXT NOT NULL REFERENCES wallet_accounts (address),
    asset               TEXT NOT NULL CHECK (asset IN ('eth', 'erc20')),
    token_address       TEXT CHECK (token_address ~ '^0x[0-9a-fA-F]{40}$'),
    recipient           TEXT NOT NULL CHECK (recipient ~ '^0x[0-9a-fA-F]{40}$'),
    amount              NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    state               TEXT NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'signed', 'broadcast', 'mined', 'confirmed', 'reverted', 'failed')),
    nonce               BIGINT CHECK (nonce >= 0),
    mined_tx_hash       BYTEA CHECK (octet_length(mined_tx_hash) = 32),
    block_number        BIGINT,
    block_hash          BYTEA,
    gas_used            BIGINT,
    effective_gas_price NUMERIC(78, 0),
    failure_code        TEXT CHECK (failure_code IN (
                            'insufficient_funds', 'would_revert', 'rejected_by_node', 'nonce_taken_elsewhere', 'reverted')),
    failure_reason      TEXT,
    last_error          TEXT,
    -- First block at which the chain's nonce had passed ours while none of our attempts had a receipt.
    nonce_passed_at_block BIGINT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at          TIMESTAMPTZ,
    CHECK ((asset = 'erc20') = (token_address IS NOT NULL)),
    -- A failed transfer keeps its nonce only when the chain used that nonce for something else.
    CHECK (state = 'failed' OR (state = 'queued') = (nonce IS NULL)),
    CHECK ((state IN ('mined', 'confirmed', 'reverted')) = (mined_tx_hash IS NOT NULL)),
    CHECK ((state IN ('reverted', 'failed')) = (failure_code IS NOT NULL)),
    CHECK ((failure_code IS NULL) = (failure_reason IS NULL)),
    -- One transfer per nonce: the database itself refuses a second payment at a nonce.
    UNIQUE (wallet_address, nonce)
);

CREATE INDEX wallet_transfers_open_idx ON wallet_transfers (wallet_address, id)
    WHERE state IN ('queued', 'signed', 'broadcast', 'mined');

CREATE TRIGGER wallet_transfers_updated_at BEFORE UPDATE ON wallet_transfers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every signed version of a transfer: the first, and each same-nonce replacement with higher fees.
-- Stored before it is broadcast; re-broadcasting sends these exact bytes.
CREATE TABLE wallet_transfer_attempts (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id              BIGINT NOT NULL REFERENCES wallet_transfers (id),
    nonce                    BIGINT NOT NULL CHECK (nonce >= 0),
    max_fee_per_gas          NUMERIC(78, 0) NOT NULL CHECK (max_fee_per_gas > 0),
    max_priority_fee_per_gas NUMERIC(78, 0) NOT NULL CHECK (max_priority_fee_per_gas >= 0),
    gas_limit                BIGINT NOT NULL CHECK (gas_limit >= 21000),
    tx_hash                  BYTEA NOT NULL UNIQUE CHECK (octet_length(tx_hash) = 32),
    raw_transaction          BYTEA NOT NULL,
    -- Last time a node acknowledged these bytes; NULL until one has.
    broadcast_at             TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (max_priority_fee_per_gas <= max_fee_per_gas)
);

CREATE INDEX wallet_transfer_attempts_transfer_idx ON wallet_transfer_attempts (transfer_id, id);

-- An exchange TelePay means to fund, keyed by the caller's idempotency key. ChangeNOW has no
-- idempotency key of its own, so this row is what makes a payout fund at most one exchange:
-- exchange_id is set once, by the first create whose answer arrived, and only that exchange's payin
-- address is ever paid (by the wallet transfer whose key is funding_transfer_key).
CREATE TABLE exchange_intents (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key     TEXT NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    from_currency       TEXT NOT NULL CHECK (from_currency ~ '^[a-z0-9]{2,15}$'),
    from_network        TEXT CHECK (from_network ~ '^[a-z0-9]{2,15}$'),
    to_currency         TEXT NOT NULL CHECK (to_currency ~ '^[a-z0-9]{2,15}$'),
    to_network          TEXT CHECK (to_network ~ '^[a-z0-9]{2,15}$'),
    from_amount         NUMERIC(38, 18) NOT NULL CHECK (from_amount > 0),
    payout_address      TEXT NOT NULL CHECK (char_length(payout_address) BETWEEN 10 AND 128),
    payout_extra_id     TEXT CHECK (char_length(payout_extra_id) BETWEEN 1 AND 64),
    refund_address      TEXT CHECK (char_length(refund_address) BETWEEN 10 AND 128),
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'created', 'funding', 'finished', 'failed', 'refunded', 'abandoned')),
    exchange_id         TEXT UNIQUE,
    payin_address       TEXT,
    payin_extra_id      TEXT,
    expected_to_amount  NUMERIC(38, 18),
    exchange_status     TEXT,
    funding_transfer_key TEXT UNIQUE,
    last_error          TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((exchange_id IS NULL) = (payin_address IS NULL)),
    CHECK (state IN ('pending', 'abandoned') OR exchange_id IS NOT NULL),
    CHECK (funding_transfer_key IS NULL OR exchange_id IS NOT NULL)
);

CREATE TRIGGER exchange_intents_updated_at BEFORE UPDATE ON exchange_intents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Once an intent names its exchange (and once funding starts), that never changes: a bug elsewhere
-- cannot redirect money to a second exchange.
CREATE FUNCTION exchange_intents_freeze_exchange() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.exchange_id IS NOT NULL AND NEW.exchange_id IS DISTINCT FROM OLD.exchange_id
       OR OLD.payin_address IS NOT NULL AND NEW.payin_address IS DISTINCT FROM OLD.payin_address
       OR OLD.funding_transfer_key IS NOT NULL AND NEW.funding_transfer_key IS DISTINCT FROM OLD.funding_transfer_key THEN
        RAISE EXCEPTION 'exchange intent % already names exchange %; it cannot change', OLD.id, OLD.exchange_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER exchange_intents_freeze_exchange BEFORE UPDATE ON exchange_intents
    FOR EACH ROW EXECUTE FUNCTION exchange_intents_freeze_exchange();

-- Each call to ChangeNOW's create for an intent, recorded before the call.
--   NULL        the call was in flight when the process died
--   created     this attempt's exchange is the intent's exchange
--   superseded  an exchange was created, but another attempt's was recorded first; it is never funded
--   rejected    ChangeNOW refused; nothing was created
--   unknown     no usable answer (timeout, broken connection, 5xx)
-- NULL, superseded and unknown attempts may have left an unfunded exchange at ChangeNOW; they are
-- listed for reconciliation.
CREATE TABLE exchange_create_attempts (
    intent_id   BIGINT NOT NULL REFERENCES exchange_intents (id),
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    outcome     TEXT CHECK (outcome IN ('created', 'superseded', 'rejected', 'unknown')),
    exchange_id TEXT,
    error       TEXT,
    PRIMARY KEY (intent_id, attempt),
    CHECK ((outcome IS NULL) = (finished_at IS NULL)),
    CHECK ((outcome IN ('created', 'superseded')) = (exchange_id IS NOT NULL))
);
