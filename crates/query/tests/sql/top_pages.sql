-- Top pages by events, with how many distinct known customers saw each.
SELECT page, count(*) AS events, count(DISTINCT customer_id) AS customers
FROM events
WHERE page IS NOT NULL
GROUP BY page
ORDER BY events DESC, page
LIMIT 5
