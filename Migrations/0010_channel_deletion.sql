-- Deleting a channel pair. A pair nobody ever bought is removed outright; one with orders keeps its row
-- (orders, subscriptions and ledger entries point at it, and money records are never deleted) and is only
-- marked deleted: hidden from its owner, not sold, and its chats released for a new pair.
ALTER TABLE channels ADD COLUMN deleted_at TIMESTAMPTZ;

ALTER TABLE channels
    ADD CONSTRAINT channels_deleted_are_paused CHECK (deleted_at IS NULL OR status = 'paused');

-- A chat may be used again once its pair is deleted, so uniqueness covers live pairs only.
ALTER TABLE channels DROP CONSTRAINT channels_closed_chat_id_key;
ALTER TABLE channels DROP CONSTRAINT channels_open_chat_id_key;
CREATE UNIQUE INDEX channels_live_closed_chat_idx ON channels (closed_chat_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX channels_live_open_chat_idx ON channels (open_chat_id) WHERE deleted_at IS NULL;

CREATE OR REPLACE FUNCTION channels_claim_chats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM channel_chat_claims WHERE channel_id = NEW.id;
    IF NEW.deleted_at IS NULL THEN
        INSERT INTO channel_chat_claims (chat_id, channel_id, role)
        VALUES (NEW.open_chat_id, NEW.id, 'open'), (NEW.closed_chat_id, NEW.id, 'closed');
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER channels_claim_chats ON channels;
CREATE TRIGGER channels_claim_chats AFTER INSERT OR UPDATE OF open_chat_id, closed_chat_id, deleted_at ON channels
    FOR EACH ROW EXECUTE FUNCTION channels_claim_chats();
