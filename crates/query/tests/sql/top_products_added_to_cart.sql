-- Products most added to cart, and how many of those customers went on to order.
WITH carts AS (
    SELECT DISTINCT customer_id, product FROM events WHERE type = 'add_to_cart'
),
buyers AS (
    SELECT DISTINCT customer_id FROM events WHERE type = 'placed_order'
)
SELECT c.product, count(*) AS customers, count(b.customer_id) AS ordered
FROM carts c
LEFT JOIN buyers b ON c.customer_id = b.customer_id
GROUP BY c.product
ORDER BY customers DESC, c.product
