//! Logs as Envoy writes them: lines in end-time order stamped with start time, several proxies per file; counts stay exact.
