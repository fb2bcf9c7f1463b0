SELECT nope FROM events
