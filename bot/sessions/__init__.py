"""Where conversations live: the session protocol, SQLite and Redis stores, redaction."""
