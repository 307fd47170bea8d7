-- TelePay's first schema: people, owners, channel pairs, tiers, payout settings, the payout catalogue,
-- conversation state and the bot's polling offset. Forward-only: later changes go in new files.
-- Bounds here are the same ones the bot's forms enforce, so a form can never accept what the database refuses.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- Everyone who has talked to the bot. Ids are Telegram user ids.
CREATE TABLE telegram_users (
    id                BIGINT PRIMARY KEY CHECK (id > 0),
    username          TEXT CHECK (username ~ '^[A-Za-z0-9_]{1,32}$'),
    first_name        TEXT NOT NULL DEFAULT '' CHECK (char_length(first_name) <= 256),
    telegram_language TEXT CHECK (char_length(telegram_language) BETWEEN 2 AND 35),
    chosen_language   TEXT CHECK (chosen_language ~ '^[a-z]{2,3}$'),
    blocked_bot_at    TIMESTAMPTZ,
    first_seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A Telegram user who sells access to channels.
CREATE TABLE owners (
    user_id    BIGINT PRIMARY KEY REFERENCES telegram_users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A sellable pair: the private ("closed") channel buyers get into, and the public ("open") channel where
-- the offer is shown. Both are Telegram channel ids (-100…). Titles are display titles (read from Telegram,
-- overridable, at most 30 characters as the offer posts show them).
CREATE TABLE channels (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_user_id    BIGINT NOT NULL REFERENCES owners (user_id),
    closed_chat_id   BIGINT NOT NULL UNIQUE CHECK (closed_chat_id < -1000000000000),
    closed_title     TEXT NOT NULL CHECK (char_length(closed_title) BETWEEN 1 AND 30),
    open_chat_id     BIGINT NOT NULL UNIQUE CHECK (open_chat_id < -1000000000000),
    open_title       TEXT NOT NULL CHECK (char_length(open_title) BETWEEN 1 AND 30),
    closed_description TEXT NOT NULL DEFAULT '' CHECK (char_length(closed_description) <= 140),
    open_description TEXT NOT NULL DEFAULT '' CHECK (char_length(open_description) <= 140),
    donation_message TEXT CHECK (char_length(btrim(donation_message)) BETWEEN 10 AND 256),
    status           TEXT NOT NULL DEFAULT 'setup' CHECK (status IN ('setup', 'active', 'paused')),
    -- The deep-link payload of the offer (t.me/<bot>?start=<token>): random, so not guessable from ids.
    offer_token      TEXT NOT NULL UNIQUE
                     DEFAULT translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_')
                     CHECK (offer_token ~ '^[A-Za-z0-9_-]{16,32}$'),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (open_chat_id <> closed_chat_id)
);

CREATE INDEX channels_owner_idx ON channels (owner_user_id);

CREATE TRIGGER channels_updated_at BEFORE UPDATE ON channels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every Telegram chat used by a channel pair, in either role. The primary key makes a chat usable by at
-- most one pair, whether as its open or its closed channel, even under concurrent registrations.
CREATE TABLE channel_chat_claims (
    chat_id    BIGINT PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('open', 'closed'))
);

CREATE FUNCTION channels_claim_chats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM channel_chat_claims WHERE channel_id = NEW.id;
    INSERT INTO channel_chat_claims (chat_id, channel_id, role)
    VALUES (NEW.open_chat_id, NEW.id, 'open'), (NEW.closed_chat_id, NEW.id, 'closed');
    RETURN NEW;
END;
$$;

CREATE TRIGGER channels_claim_chats AFTER INSERT OR UPDATE OF open_chat_id, closed_chat_id ON channels
    FOR EACH ROW EXECUTE FUNCTION channels_claim_chats();

-- Up to three price tiers per channel (1 = Gold, 2 = Silver, 3 = Bronze). Prices are US dollars.
CREATE TABLE channel_tiers (
    channel_id    BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position      SMALLINT NOT NULL CHECK (position BETWEEN 1 AND 3),
    price_usd     NUMERIC(12, 2) NOT NULL CHECK (price_usd >= 0.01 AND price_usd <= 9999.99),
    duration_days INTEGER NOT NULL CHECK (duration_days BETWEEN 1 AND 3650),
    enabled       BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, position)
);

CREATE TRIGGER channel_tiers_updated_at BEFORE UPDATE ON channel_tiers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The payout catalogue: which coin can be paid out on which network. One table of pairs over two code
-- tables; no enum type, so the catalogue and the allowed values cannot drift apart.
CREATE TABLE payout_currencies (
    code TEXT PRIMARY KEY CHECK (code ~ '^[A-Z0-9]{2,10}$'),
    name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64)
);

CREATE TABLE payout_networks (
    code           TEXT PRIMARY KEY CHECK (code ~ '^[A-Z0-9]{2,10}$'),
    name           TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    -- Which wallet address syntax the network uses; the owner form validates addresses by it.
    address_format TEXT NOT NULL CHECK (address_format IN (
        'evm', 'bitcoin', 'litecoin', 'bitcoin_cash', 'dogecoin', 'solana', 'tron', 'ton',
        'cardano', 'stellar', 'monero', 'ripple', 'zcash'))
);

CREATE TABLE payout_options (
    currency_code TEXT NOT NULL REFERENCES payout_currencies (code),
    network_code  TEXT NOT NULL REFERENCES payout_networks (code),
    enabled       BOOLEAN NOT NULL DEFAULT true,
    PRIMARY KEY (currency_code, network_code)
);

-- How and where a channel's owner is paid.
CREATE TABLE channel_payout_settings (
    channel_id            BIGINT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    currency_code         TEXT NOT NULL,
    network_code          TEXT NOT NULL,
    wallet_address        TEXT NOT NULL CHECK (char_length(wallet_address) BETWEEN 10 AND 128 AND wallet_address !~ '\s'),
    -- Memo / destination tag for networks that need one (TON, XRP, XLM); sent to the exchange as extra id.
    wallet_memo           TEXT CHECK (char_length(wallet_memo) BETWEEN 1 AND 64),
    strategy              TEXT NOT NULL DEFAULT 'instant' CHECK (strategy IN ('instant', 'threshold')),
    threshold_usd         NUMERIC(12, 2),
    notifications_enabled BOOLEAN NOT NULL DEFAULT false,
    notification_user_id  BIGINT CHECK (notification_user_id > 0),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (currency_code, network_code) REFERENCES payout_options (currency_code, network_code),
    CHECK ((strategy = 'instant' AND threshold_usd IS NULL)
        OR (strategy = 'threshold' AND threshold_usd IS NOT NULL AND threshold_usd BETWEEN 10 AND 100000)),
    CHECK (NOT notifications_enabled OR notification_user_id IS NOT NULL)
);

CREATE TRIGGER channel_payout_settings_updated_at BEFORE UPDATE ON channel_payout_settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A conversation (form) in progress: one row per chat, user and conversation, so a restart resumes it.
CREATE TABLE conversation_states (
    chat_id            BIGINT NOT NULL,
    user_id            BIGINT NOT NULL CHECK (user_id > 0),
    conversation       TEXT NOT NULL CHECK (conversation ~ '^[a-z][a-z0-9_]{0,63}$'),
    step               TEXT NOT NULL CHECK (char_length(step) BETWEEN 1 AND 64),
    draft              JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(draft) = 'object'),
    definition_version TEXT NOT NULL,
    menu_message_id    BIGINT,
    expires_at         TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id, conversation)
);

CREATE INDEX conversation_states_expiry_idx ON conversation_states (expires_at);

CREATE TRIGGER conversation_states_updated_at BEFORE UPDATE ON conversation_states
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The next getUpdates offset per bot, advanced only after an update's effects are committed.
CREATE TABLE telegram_polling_offsets (
    bot_id         BIGINT PRIMARY KEY CHECK (bot_id > 0),
    next_update_id BIGINT NOT NULL CHECK (next_update_id >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The payout options the original offered (87 currency/network pairs).
INSERT INTO payout_networks (code, name, address_format) VALUES
    ('ADA', 'Cardano', 'cardano'),
    ('BASE', 'Base', 'evm'),
    ('BCH', 'Bitcoin Cash', 'bitcoin_cash'),
    ('BSC', 'BNB Smart Chain', 'evm'),
    ('BTC', 'Bitcoin', 'bitcoin'),
    ('DOGE', 'Dogecoin', 'dogecoin'),
    ('ETH', 'Ethereum', 'evm'),
    ('LTC', 'Litecoin', 'litecoin'),
    ('MATIC', 'Polygon', 'evm'),
    ('SOL', 'Solana', 'solana'),
    ('TON', 'Toncoin', 'ton'),
    ('TRX', 'TRON', 'tron'),
    ('XLM', 'Stellar', 'stellar'),
    ('XMR', 'Monero', 'monero'),
    ('XRP', 'XRP Ledger', 'ripple'),
    ('ZEC', 'Zcash', 'zcash');

INSERT INTO payout_currencies (code, name) VALUES
    ('AAVE', 'Aave'), ('ADA', 'Cardano'), ('ARB', 'Arbitrum'), ('AVAX', 'Avalanche'), ('BCH', 'Bitcoin Cash'),
    ('BGB', 'Bitget Token'), ('BNB', 'BNB'), ('BONK', 'Bonk'), ('BTC', 'Bitcoin'), ('CRO', 'Cronos'),
    ('DAI', 'Dai'), ('DOGE', 'Dogecoin'), ('DOT', 'Polkadot'), ('ETC', 'Ethereum Classic'), ('ETH', 'Ethereum'),
    ('FDUSD', 'First Digital USD'), ('FIL', 'Filecoin'), ('GRT', 'The Graph'), ('IMX', 'Immutable'),
    ('INJ', 'Injective'), ('JUP', 'Jupiter'), ('LDO', 'Lido DAO'), ('LEO', 'UNUS SED LEO'), ('LINK', 'Chainlink'),
    ('LTC', 'Litecoin'), ('MNT', 'Mantle'), ('NEAR', 'NEAR Protocol'), ('OKB', 'OKB'), ('ONDO', 'Ondo'),
    ('PEPE', 'Pepe'), ('QNT', 'Quant'), ('SHIB', 'Shiba Inu'), ('SOL', 'Solana'), ('TON', 'Toncoin'),
    ('TRX', 'TRON'), ('USD1', 'USD1'), ('USDC', 'USD Coin'), ('USDE', 'USDe'), ('USDT', 'Tether USDt'),
    ('VET', 'VeChain'), ('WLD', 'Worldcoin'), ('WLFI', 'WLFI'), ('XLM', 'Stellar'), ('XMR', 'Monero'),
    ('XRP', 'XRP'), ('ZEC', 'Zcash');

INSERT INTO payout_options (currency_code, network_code) VALUES
    ('AAVE', 'BSC'), ('AAVE', 'ETH'), ('ADA', 'ADA'), ('ADA', 'BSC'), ('ARB', 'ETH'), ('AVAX', 'BSC'),
    ('BCH', 'BCH'), ('BCH', 'BSC'), ('BGB', 'ETH'), ('BNB', 'BSC'), ('BONK', 'BSC'), ('BONK', 'SOL'),
    ('BTC', 'BTC'), ('CRO', 'ETH'), ('DAI', 'BSC'), ('DAI', 'ETH'), ('DAI', 'MATIC'), ('DOGE', 'BSC'),
    ('DOGE', 'DOGE'), ('DOGE', 'ETH'), ('DOT', 'BSC'), ('ETC', 'BSC'), ('ETH', 'BASE'), ('ETH', 'BSC'),
    ('ETH', 'ETH'), ('FDUSD', 'BSC'), ('FDUSD', 'ETH'), ('FDUSD', 'SOL'), ('FIL', 'BSC'), ('GRT', 'ETH'),
    ('GRT', 'MATIC'), ('IMX', 'ETH'), ('INJ', 'BSC'), ('INJ', 'ETH'), ('JUP', 'SOL'), ('LDO', 'ETH'),
    ('LEO', 'ETH'), ('LINK', 'BSC'), ('LINK', 'ETH'), ('LINK', 'MATIC'), ('LTC', 'BSC'), ('LTC', 'LTC'),
    ('MNT', 'ETH'), ('NEAR', 'BSC'), ('OKB', 'ETH'), ('ONDO', 'ETH'), ('PEPE', 'ETH'), ('QNT', 'ETH'),
    ('SHIB', 'BSC'), ('SHIB', 'ETH'), ('SOL', 'BSC'), ('SOL', 'ETH'), ('SOL', 'SOL'), ('TON', 'BSC'),
    ('TON', 'ETH'), ('TON', 'TON'), ('TRX', 'BSC'), ('TRX', 'TRX'), ('USD1', 'BSC'), ('USD1', 'ETH'),
    ('USD1', 'SOL'), ('USD1', 'TRX'), ('USDC', 'BASE'), ('USDC', 'BSC'), ('USDC', 'ETH'), ('USDC', 'MATIC'),
    ('USDC', 'SOL'), ('USDE', 'BSC'), ('USDE', 'ETH'), ('USDE', 'TON'), ('USDT', 'BASE'), ('USDT', 'BSC'),
    ('USDT', 'ETH'), ('USDT', 'MATIC'), ('USDT', 'SOL'), ('USDT', 'TON'), ('USDT', 'TRX'), ('VET', 'BSC'),
    ('WLD', 'ETH'), ('WLFI', 'BSC'), ('WLFI', 'ETH'), ('WLFI', 'SOL'), ('XLM', 'XLM'), ('XMR', 'XMR'),
    ('XRP', 'BSC'), ('XRP', 'XRP'), ('ZEC', 'ZEC');
