-- Unique users per UTC event date, for comparison with the ksqlDB rule.
SELECT event_date, count(DISTINCT customer_id) AS unique_users
FROM events
WHERE event_date IS NOT NULL
GROUP BY event_date
ORDER BY event_date
