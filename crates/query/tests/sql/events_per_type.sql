-- `type` is a column name, not a keyword.
SELECT type, count(*) FROM events GROUP BY type ORDER BY count(*) DESC, type
