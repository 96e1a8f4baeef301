//! A fake Loki / LokiStack gateway speaking the real query_range JSON wire format.
