"""Django's PostgreSQL backend, reading timestamps with psycopg's own loader (see `base`)."""
