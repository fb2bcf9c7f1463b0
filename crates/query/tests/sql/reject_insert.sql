INSERT INTO events (id, type) VALUES (1, 'page_view')
