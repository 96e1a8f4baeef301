//! The log-store source: trace/failures/explain/report/collect against a fake Loki / LokiStack.
