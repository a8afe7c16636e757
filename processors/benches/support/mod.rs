//! Pieces of the projector benchmark, one concern per file: what a run owns ([`env`]), the
//! pre-filled topic ([`fill`]), reading it back ([`read`]), running a projection through the
//! real runtime ([`run`]), the stores' raw write speed at the same batch size ([`baseline_pg`], [`baseline_redis`]), where
//! time goes ([`cpu`], [`server`]), and the printed and JSON report ([`report`]).

pub(crate) mod baseline_pg;
pub(crate) mod baseline_redis;
pub(crate) mod cpu;
pub(crate) mod env;
pub(crate) mod fill;
pub(crate) mod read;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod server;

/// A baseline's result: the store's raw write speed for the same events, at the same batch size.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    /// What was written, for the report (e.g. "binary COPY, 1 ledger row per coin-earning event").
    pub(crate) what: String,
    /// Events the batches stood for (all events of the topic).
    pub(crate) events: u64,
    /// Rows copied, or commands sent.
    pub(crate) writes: u64,
    pub(crate) batches: u64,
    /// Time spent in the store round trips only; preparing the rows or commands is not counted.
    pub(crate) secs: f64,
}

impl Baseline {
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.secs.max(f64::EPSILON)
    }
}
