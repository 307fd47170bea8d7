-- An admin's change to someone's access, with who, what, why and when. The row is written when the admin
-- presses the button (awaiting the reason they must give) and completed, with the expiry before and after,
-- in the same transaction that changes the subscription.
CREATE TABLE admin_access_actions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_user_id   BIGINT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('extend', 'revoke')),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    user_id         BIGINT NOT NULL,
    days            INTEGER CHECK (days BETWEEN 1 AND 3650),
    status          TEXT NOT NULL DEFAULT 'awaiting_reason' CHECK (status IN ('awaiting_reason', 'done', 'cancelled')),
    reason          TEXT CHECK (char_length(reason) BETWEEN 3 AND 500),
    expires_before  TIMESTAMPTZ,
    expires_after   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at         TIMESTAMPTZ,
    CHECK ((action = 'extend') = (days IS NOT NULL)),
    CHECK ((status = 'done') = (reason IS NOT NULL AND done_at IS NOT NULL AND expires_after IS NOT NULL))
);

CREATE INDEX admin_access_actions_waiting_idx ON admin_access_actions (admin_user_id) WHERE status = 'awaiting_reason';
CREATE INDEX admin_access_actions_user_idx ON admin_access_actions (user_id, created_at DESC);
