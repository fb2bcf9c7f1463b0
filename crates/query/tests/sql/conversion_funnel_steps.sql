-- The same funnel as one row per step, the shape charts want.
WITH per_customer AS (
    SELECT customer_id,
           bool_or(type IN ('page_view', 'view')) AS viewed,
           bool_or(type = 'add_to_cart') AS added,
           bool_or(type = 'placed_order') AS ordered
    FROM events
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
)
SELECT 1 AS step, 'viewed' AS stage, count(*) FILTER (WHERE viewed) AS customers FROM per_customer
UNION ALL
SELECT 2, 'added_to_cart', count(*) FILTER (WHERE viewed AND added) FROM per_customer
UNION ALL
SELECT 3, 'placed_order', count(*) FILTER (WHERE viewed AND added AND ordered) FROM per_customer
ORDER BY step
