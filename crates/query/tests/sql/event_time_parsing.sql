-- How timestamps were read: Z suffix, space separator, offset, fractional seconds, garbage.
SELECT id, "timestamp", event_time, event_date, event_time_valid
FROM events
WHERE id IN (1, 5, 19, 22, 31, 32)
ORDER BY id
