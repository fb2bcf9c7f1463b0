-- Dead letters keep the raw bytes (shown in hex) and why they failed.
SELECT source_partition, source_offset, reason, schema_id, raw, correlation_id
FROM dead_letters
ORDER BY source_partition, source_offset
