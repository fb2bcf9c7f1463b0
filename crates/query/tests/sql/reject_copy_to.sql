COPY (SELECT * FROM events) TO '/tmp/events.csv'
