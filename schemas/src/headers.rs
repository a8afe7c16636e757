//! Kafka header names carried by every event, so consumers can route and trace without decoding.

/// The record's full Avro name, e.g. `app.surge.events.TapsSubmitted`.
pub const EVENT_TYPE: &str = "surge-event-type";
/// The client's `Idempotency-Key`, when the write carried one.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// W3C trace context of the request that produced the event.
pub const TRACEPARENT: &str = "traceparent";
