//! Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary body) through a
//! schema registry, with subjects named by `TopicRecordNameStrategy`.
//!
//! The encoder always writes with the schema compiled into this binary (registering it if the
//! registry lacks it), never with whatever the registry calls "latest": a rolling deploy then
//! never writes data with a schema the running code does not know.

use std::collections::HashMap;
use std::time::Duration;

use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::events::{Event, EventType};
use crate::{Error, Result, avro};

pub struct Codec {
    registry_url: String,
    http: reqwest::Client,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    strategies: HashMap<EventType, SubjectNameStrategy>,
}

impl Codec {
    /// A codec writing to `topic`. Nothing is contacted until the first call.
    pub fn new(registry_url: &str, topic: &str, timeout: Duration) -> Result<Codec> {
        let settings = || {
            SrSettings::new_builder(registry_url.to_owned())
                .no_proxy()
                .set_timeout(timeout)
                .build()
                .map_err(|e| Error::Registry(e.error))
        };
        let strategies = EventType::ALL
            .iter()
            .map(|&t| {
                let schema = SuppliedSchema::new(
                    Some(t.full_name()),
                    SchemaType::Avro,
                    t.schema_json().to_owned(),
                );
                let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
                    topic.to_owned(),
                    schema,
                );
                (t, strategy)
            })
            .collect();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Registry(e.to_string()))?;
        Ok(Codec {
            registry_url: registry_url.trim_end_matches('/').to_owned(),
            http,
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
            strategies,
        })
    }

    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// Registers every event type's schema under its subject, so an incompatible schema change is
    /// refused at start-up (by the registry's compatibility rule) rather than on the first write.
    /// Each subject is held to BACKWARD_TRANSITIVE first (see `Codec::hold_compatibility`).
    pub async fn register_all(&self) -> Result<()> {
        for (event_type, strategy) in &self.strategies {
            let subject = strategy
                .get_subject()
                .map_err(|e| Error::Registry(e.error))?;
            self.hold_compatibility(&subject).await?;
            self.encoder
                .get_schema_and_id(&subject, strategy.clone())
                .await
                .map_err(|e| registry_error(&subject, e))
                .map_err(|e| match e {
                    Error::Rejected { subject, reason } => Error::Rejected {
                        subject,
                        reason: format!("{} schema: {reason}", event_type.name()),
                    },
                    other => other,
                })?;
        }
        Ok(())
    }

    pub async fn encode(&self, event: &Event) -> Result<Vec<u8>> {
        let strategy = &self.strategies[&event.event_type()];
        let value = avro::to_value(event)?;
        self.encoder
            .encode_value(value, strategy)
            .await
            .map_err(|e| {
                let subject = strategy.get_subject().unwrap_or_default();
                registry_error(&subject, e)
            })
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<Event> {
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if e.retriable {
                Error::Registry(describe(&e))
            } else {
                Error::Malformed(describe(&e))
            }
        })?;
        let name = decoded
            .name
            .map(|n| n.fullname(None))
            .ok_or_else(|| Error::Malformed("schema is not a named record".into()))?;
        let event_type = EventType::from_name(&name).ok_or(Error::UnknownType(name))?;
        avro::from_value(event_type, decoded.value)
    }

    /// Makes sure `subject` is checked at least as strictly as BACKWARD_TRANSITIVE, the contract's
    /// rule: registries differ in their default (Confluent BACKWARD, Apicurio NONE), and under a
    /// weaker one an incompatible schema would be accepted. A subject (or, through
    /// `defaultToGlobal`, the registry) already at BACKWARD_TRANSITIVE or FULL_TRANSITIVE is left
    /// as it is; otherwise the subject's level is set. A registry that refuses to set it fails
    /// the start with a reason, so the operator can set the level globally instead.
    async fn hold_compatibility(&self, subject: &str) -> Result<()> {
        let url = format!("{}/config/{subject}", self.registry_url);
        let current = match self
            .http
            .get(format!("{url}?defaultToGlobal=true"))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["compatibilityLevel"].as_str().map(str::to_owned)),
            Ok(_) => None, // no level of its own (Confluent answers 404 then)
            Err(e) => return Err(Error::Registry(e.to_string())),
        };
        if matches!(
            current.as_deref(),
            Some("BACKWARD_TRANSITIVE" | "FULL_TRANSITIVE")
        ) {
            return Ok(());
        }
        let response = self
            .http
            .put(url)
            .json(&serde_json::json!({ "compatibility": "BACKWARD_TRANSITIVE" }))
            .send()
            .await
            .map_err(|e| Error::Registry(e.to_string()))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(Error::Rejected {
            subject: subject.to_owned(),
            reason: format!(
                "its compatibility level is {} and setting BACKWARD_TRANSITIVE was answered {}; set BACKWARD_TRANSITIVE on the subject or the registry",
                current.as_deref().unwrap_or("unknown"),
                response.status()
            ),
        })
    }

    /// Cheap reachability probe for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/config", self.registry_url);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Registry(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Registry(format!(
                "GET /config answered {}",
                response.status()
            )))
        }
    }
}

fn registry_error(subject: &str, e: SRCError) -> Error {
    if e.retriable {
        Error::Registry(describe(&e))
    } else {
        Error::Rejected {
            subject: subject.to_owned(),
            reason: describe(&e),
        }
    }
}

fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}
