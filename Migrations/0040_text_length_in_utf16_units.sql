-- One way to measure a text: UTF-16 code units, the unit Telegram counts its limits in (message text,
-- captions, entity offsets). The form (`TextLength` in Sources/Conversations) counts the same way, so a text
-- the form accepts is one the database and Telegram accept too. Before this, the form counted grapheme
-- clusters and these checks counted code points: a title with flag emoji passed the form and failed the save.

CREATE FUNCTION telepay_text_length(value text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- A code point above U+FFFF takes two UTF-16 units (a surrogate pair); every other takes one.
    SELECT char_length(value) + char_length(regexp_replace(value, '[^\U00010000-\U0010FFFF]', '', 'g'))
$$;

-- Stored texts longer than the new measure allows are shortened (whole code points from the end) so the new
-- checks hold; the original text is kept here, so nothing an owner wrote is lost.
CREATE TABLE channel_text_shortenings (
    channel_id   BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    field        TEXT NOT NULL,
    original     TEXT NOT NULL,
    shortened_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, field)
);

CREATE FUNCTION telepay_shorten_text(value text, maximum integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    result text := value;
BEGIN
    WHILE telepay_text_length(result) > maximum LOOP
        result := left(result, -1);
    END LOOP;
    RETURN result;
END;
$$;

INSERT INTO channel_text_shortenings (channel_id, field, original)
SELECT id, 'closed_title', closed_title FROM channels WHERE telepay_text_length(closed_title) > 30
UNION ALL
SELECT id, 'open_title', open_title FROM channels WHERE telepay_text_length(open_title) > 30
UNION ALL
SELECT id, 'closed_description', closed_description FROM channels WHERE telepay_text_length(closed_description) > 140
UNION ALL
SELECT id, 'open_description', open_description FROM channels WHERE telepay_text_length(open_description) > 140
UNION ALL
SELECT id, 'donation_message', donation_message FROM channels WHERE telepay_text_length(btrim(donation_message)) > 256;

UPDATE channels SET
    closed_title = telepay_shorten_text(closed_title, 30),
    open_title = telepay_shorten_text(open_title, 30),
    closed_description = telepay_shorten_text(closed_description, 140),
    open_description = telepay_shorten_text(open_description, 140),
    donation_message = telepay_shorten_text(btrim(donation_message), 256)
WHERE id IN (SELECT channel_id FROM channel_text_shortenings);

-- The same bounds as before, in the one measure. Named, so a refused save can name the field.
ALTER TABLE channels
    DROP CONSTRAINT channels_closed_title_check,
    DROP CONSTRAINT channels_open_title_check,
    DROP CONSTRAINT channels_closed_description_check,
    DROP CONSTRAINT channels_open_description_check,
    DROP CONSTRAINT channels_donation_message_check,
    ADD CONSTRAINT channels_closed_title_length CHECK (telepay_text_length(closed_title) BETWEEN 1 AND 30),
    ADD CONSTRAINT channels_open_title_length CHECK (telepay_text_length(open_title) BETWEEN 1 AND 30),
    ADD CONSTRAINT channels_closed_description_length CHECK (telepay_text_length(closed_description) <= 140),
    ADD CONSTRAINT channels_open_description_length CHECK (telepay_text_length(open_description) <= 140),
    ADD CONSTRAINT channels_donation_message_length CHECK (telepay_text_length(btrim(donation_message)) BETWEEN 10 AND 256);
