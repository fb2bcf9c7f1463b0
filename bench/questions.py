"""The standard SQL questions (crates/query/tests/sql/<name>.sql), named once for the bench.

The reject_*/invalid_unknown_* files are error cases and event_time_parsing, search_queries
and dead_letters are fixture checks, not analytics.
"""

# The questions over `events` alone (DuckDB reads that one table's files in sql_ab.py).
EVENTS_QUESTIONS = [
    "events_per_type",
    "events_per_type_per_day",
    "top_pages",
    "conversion_funnel",
    "conversion_funnel_steps",
    "top_products_added_to_cart",
    "unique_users_per_day_from_events",
    "unique_users_per_day_by_event_date",
]

# Every standard question: those above, then the ones over the other tables.
QUERIES = EVENTS_QUESTIONS + [
    "unique_users_daily",
    "invalid_events_by_reason",
    "invalid_events_per_day",
]
