-- Conversion funnel per distinct customer: viewed (page_view or view), then added to cart,
-- then placed an order. A customer counts at a step only if they reached every earlier one.
WITH per_customer AS (
    SELECT customer_id,
           max(CASE WHEN type IN ('page_view', 'view') THEN 1 ELSE 0 END) AS viewed,
           max(CASE WHEN type = 'add_to_cart' THEN 1 ELSE 0 END) AS added,
           max(CASE WHEN type = 'placed_order' THEN 1 ELSE 0 END) AS ordered
    FROM events
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
),
steps AS (
    SELECT sum(viewed) AS viewed,
           sum(viewed * added) AS added_to_cart,
           sum(viewed * added * ordered) AS placed_order
    FROM per_customer
)
SELECT viewed,
       added_to_cart,
       placed_order,
       round(100.0 * added_to_cart / viewed, 1) AS view_to_cart_pct,
       round(100.0 * placed_order / added_to_cart, 1) AS cart_to_order_pct,
       round(100.0 * placed_order / viewed, 1) AS view_to_order_pct
FROM steps
