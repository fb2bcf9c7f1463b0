-- The processor's table agrees with the count from the events.
WITH from_events AS (
    SELECT substr("timestamp", 1, 10) AS day, count(DISTINCT customer_id) AS from_events
    FROM events
    WHERE event_time_valid
    GROUP BY substr("timestamp", 1, 10)
)
SELECT coalesce(t.day, e.day) AS day,
       t.unique_users AS from_table,
       e.from_events,
       t.unique_users = e.from_events AS agree
FROM unique_users_daily t
FULL OUTER JOIN from_events e ON t.day = e.day
ORDER BY day
