-- What people searched for, and clicks with their position.
SELECT id, type, customer_id, query, product, position
FROM events
WHERE type IN ('search', 'click')
ORDER BY id
