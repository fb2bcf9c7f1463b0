-- Events per type per day (UTC event date). Event 32's timestamp is unparsable: its date is NULL.
SELECT event_date, type, count(*) AS events
FROM events
GROUP BY event_date, type
ORDER BY event_date NULLS LAST, events DESC, type
