//! What the `surge` binary's roles and the tools that drive them from outside (`surge-loadgen`)
//! share: the settings every role reads, how a process connects to its stores and broker, its
//! HTTP listeners and its logging. The roles themselves live in the binary (`src/main.rs`).

pub mod infra;
pub mod serve;
pub mod settings;
pub mod telemetry;
