-- New jobs are now announced by the code that enqueues them (Sources/Jobs/JobQueue.swift) instead of by a
-- row trigger. Where the queue owns the transaction it notifies right after the commit: a NOTIFY inside the
-- transaction makes PostgreSQL hold its global notify lock across that transaction's WAL flush, which
-- serialised every enqueueing commit behind the one before it (~280 single-job transactions per second here,
-- against ~2,500 with the notification sent after the commit). Jobs written into a caller's own transaction are
-- still announced inside it, at commit.
--
-- jobs_notify_update stays: it announces rescued, released and manually retried jobs, which are rare.
DROP TRIGGER jobs_notify_insert ON jobs;
