//! W3C trace context (`traceparent`), so a trace started in the Mini App or a gateway continues
//! through the write API into Kafka headers and on into the processors. Hand-written because only
//! this one header is needed; a full OpenTelemetry SDK would be the dependency for exporting spans.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub sampled: bool,
}

impl TraceContext {
    /// Continues the caller's trace with a new span of ours, or starts a new trace when the
    /// header is absent or invalid (the spec says to ignore an invalid one).
    pub fn continue_or_start(header: Option<&str>) -> Self {
        let mut rng = rand::rng();
        let span_id = hex::encode(rng.random::<[u8; 8]>());
        match header.and_then(parse) {
            Some((trace_id, sampled)) => TraceContext {
                trace_id,
                span_id,
                sampled,
            },
            None => TraceContext {
                trace_id: hex::encode(rng.random::<[u8; 16]>()),
                span_id,
                sampled: true,
            },
        }
    }

    pub fn traceparent(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", self.trace_id, self.span_id)
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, all-zero ids invalid.
fn parse(header: &str) -> Option<(String, bool)> {
    let parts: Vec<&str> = header.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return None;
    };
    let hex_of = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = *version == "00"
        && hex_of(trace_id, 32)
        && hex_of(parent_id, 16)
        && hex_of(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    let flags = u8::from_str_radix(flags, 16).ok()?;
    valid.then(|| (trace_id.to_string(), flags & 1 == 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::continue_or_start(Some(incoming));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(
            ctx.traceparent()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
        assert!(ctx.traceparent().ends_with("-01"));
    }

    #[test]
    fn starts_a_new_trace_on_garbage() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            let ctx = TraceContext::continue_or_start(Some(bad));
            assert_ne!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(ctx.trace_id.len(), 32);
        }
    }
}
