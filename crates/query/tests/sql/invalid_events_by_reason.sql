-- Invalid events by reason.
SELECT reason, count(*) AS events, min(received_date) AS first_day, max(received_date) AS last_day
FROM invalid_events
GROUP BY reason
ORDER BY events DESC, reason
