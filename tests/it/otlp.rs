//! Export of a rebuilt trace as OTLP/JSON, checked against the OpenTelemetry protobuf schema and posted to a fake receiver.
