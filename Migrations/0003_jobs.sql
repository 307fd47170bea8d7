-- Durable jobs: every follow-up step of a business change is a row here, written in the same transaction as
-- that change and run by the worker pools inside TelePay. Delivery is at least once; see Sources/Jobs.

CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind ~ '^[a-z][a-z0-9._-]{0,63}$'),
    payload          JSONB NOT NULL DEFAULT '{}',
    -- 'available' also covers jobs scheduled for later (run_at in the future) and retries waiting out a backoff.
    state            TEXT NOT NULL DEFAULT 'available'
                     CHECK (state IN ('available', 'running', 'completed', 'failed')),
    -- Incremented by each claim; completion, failure and retry writes must name the attempt they belong to
    -- (fencing), so a worker that lost its lease cannot overwrite the outcome of a later attempt.
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    run_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    unique_key       TEXT CHECK (char_length(unique_key) BETWEEN 1 AND 512),
    -- A running job belongs to attempted_by until lease_expires_at; heartbeats push the lease forward and the
    -- rescuer hands jobs with an expired lease to other workers.
    lease_expires_at TIMESTAMPTZ,
    attempted_by     TEXT,
    attempted_at     TIMESTAMPTZ,
    last_error       TEXT,
    -- One object per failed attempt: {"attempt", "at", "error", "retry_at"?}.
    errors           JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finalized_at     TIMESTAMPTZ,
    CHECK ((state = 'running') = (lease_expires_at IS NOT NULL)),
    CHECK ((state IN ('completed', 'failed')) = (finalized_at IS NOT NULL)),
    CHECK (attempt <= max_attempts)
);

-- A duplicate is refused only while the first job is waiting or running; once it finished the key is free again.
-- Jobs without a key stay out of the index, so claiming and finishing them does not write to it.
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running');

-- The claim query's path: ready jobs of a kind, oldest first.
CREATE INDEX jobs_claim_idx ON jobs (kind, run_at, id) WHERE state = 'available';

-- The rescuer's path: running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';

-- Housekeeping deletes completed jobs by age; `telepay jobs` lists recent failures.
CREATE INDEX jobs_completed_idx ON jobs (finalized_at) WHERE state = 'completed';
CREATE INDEX jobs_failed_idx ON jobs (finalized_at DESC) WHERE state = 'failed';

-- Wakes listening workers when a job becomes ready now. Notifications are sent at commit (never for a rolled
-- back enqueue) and PostgreSQL folds identical ones within a transaction, so a bulk insert sends one per kind.
CREATE FUNCTION jobs_notify_ready() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('telepay_jobs', NEW.kind);
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.state = 'available' AND NEW.run_at <= now())
    EXECUTE FUNCTION jobs_notify_ready();

-- Rescued, released and manually retried jobs become ready again without an insert.
CREATE TRIGGER jobs_notify_update AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state <> 'available' AND NEW.state = 'available' AND NEW.run_at <= now())
    EXECUTE FUNCTION jobs_notify_ready();

-- One row per periodic slot ever enqueued (task, slot start). The primary key, taken in the same transaction as
-- the job insert, is what makes two TelePay instances run each slot once; unlike the jobs' unique index it still
-- holds after the slot's job has completed and been cleaned up. Housekeeping keeps the newest slot of each task,
-- which is where catch-up after downtime starts from.
CREATE TABLE periodic_slots (
    task        TEXT NOT NULL CHECK (task ~ '^[a-z][a-z0-9._-]{0,63}$'),
    slot_start  TIMESTAMPTZ NOT NULL,
    -- Start of the oldest slot this run stands for; earlier than slot_start when missed slots were folded in.
    covers_from TIMESTAMPTZ NOT NULL CHECK (covers_from <= slot_start),
    job_id      BIGINT,
    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (task, slot_start)
);
