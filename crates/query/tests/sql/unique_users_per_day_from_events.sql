-- Unique users per day by the ksqlDB rule: distinct non-null customer_id, the day being the
-- first 10 characters of the event's timestamp (event 22, 2024-03-02T23:30:00-02:00, counts
-- on 2024-03-02 although its UTC date is 2024-03-03). Unparsable timestamps are left out.
SELECT substr("timestamp", 1, 10) AS day, count(DISTINCT customer_id) AS unique_users
FROM events
WHERE event_time_valid
GROUP BY substr("timestamp", 1, 10)
ORDER BY day
