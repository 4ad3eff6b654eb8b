-- Provisioning: scheduled batches at a time of day (design 004 2.1.5.3
-- (1): "同步定时器还能够设置同步的时间和周期", the timer sets the time and
-- the period). batch_at "HH:MM" ('' : none, the period alone), in
-- batch_tz (an IANA time zone; '' : UTC).
ALTER TABLE prov_subscriptions ADD COLUMN batch_at TEXT NOT NULL DEFAULT '';
ALTER TABLE prov_subscriptions ADD COLUMN batch_tz TEXT NOT NULL DEFAULT '';
