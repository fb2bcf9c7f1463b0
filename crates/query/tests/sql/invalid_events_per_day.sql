-- Invalid events per day, with what could be read of them.
SELECT received_date, count(*) AS events, count(event_id) AS with_id, count(event_type) AS with_type
FROM invalid_events
GROUP BY received_date
ORDER BY received_date
