use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Failures of the event contract. `is_transient` tells a caller whether retrying can help
/// (the registry was unreachable) or the input itself is bad (poison: dead-letter it).
#[derive(Debug, Error)]
pub enum Error {
    #[error("schema registry request failed: {0}")]
    Registry(String),
    #[error("schema registry rejected {subject}: {reason}")]
    Rejected { subject: String, reason: String },
    #[error("payload is not a Confluent wire-format Avro record: {0}")]
    Malformed(String),
    #[error("record {0:?} is not a known event type")]
    UnknownType(String),
    #[error("record does not match the event contract: {0}")]
    Contract(String),
}

impl Error {
    /// True when the same call may succeed later (network, registry down); false for poison input.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Registry(_))
    }
}
