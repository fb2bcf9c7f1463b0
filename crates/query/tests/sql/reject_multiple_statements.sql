SELECT count(*) FROM events;
DROP TABLE events;
