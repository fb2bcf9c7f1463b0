-- JSON text columns are read with the JSON functions: here the raw JSON of rejected
-- events (Segment's properties, traits and context_json are read the same way).
SELECT event_id,
       json_get_str(raw_json, 'type') AS type_field,
       json_get_int(raw_json, 'id') AS id_field,
       raw_json ->> 'type' AS type_by_operator,
       json_get_str(raw_json, 'event', 'ip') AS nested_ip,
       json_contains(raw_json, 'event') AS has_event
FROM invalid_events
ORDER BY source_partition, source_offset
