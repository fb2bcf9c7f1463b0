CREATE TABLE copy_of_events AS SELECT * FROM events
