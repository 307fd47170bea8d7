-- Each drawing of a conversation's menu gets the next revision; buttons carry it, so a press on a menu that
-- is no longer current is recognised and the current one redrawn instead of acting on stale choices.
ALTER TABLE conversation_states
    ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0);

-- Why sales of a channel are paused: the owner paused them, or the bot lost its place or rights in one of
-- the pair's chats (then the owner is told what to grant, and resuming checks the rights again).
ALTER TABLE channels
    ADD COLUMN paused_reason TEXT CHECK (paused_reason IN ('owner', 'bot_removed', 'bot_rights'));

UPDATE channels SET paused_reason = 'owner' WHERE status = 'paused';

ALTER TABLE channels
    ADD CONSTRAINT channels_paused_reason_only_when_paused CHECK ((status = 'paused') = (paused_reason IS NOT NULL));
