//! Checking that each claimed partition really resumed at its stored position.
//!
//! The context starts fetching [`RESUME_REWIND`] offsets early. The first message a partition
//! delivers after a claim must be at or before the stored position; if it is later, the broker
//! skipped over it (tansu answers a fetch inside a record batch with the next batch), and the
//! worker seeks further back and tries again, until the fetch covers the position or starts at
//! offset 0. Everything before the stored position is dropped before decoding.

use std::collections::HashMap;

use super::context::{RESUME_REWIND, resume_from};
use super::sink::Claim;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The partition is contiguous from its stored position: apply.
    Proceed,
    /// Drop this batch and fetch the partition again from this offset.
    Seek(i64),
}

#[derive(Debug)]
struct Resume {
    generation: i64,
    rewind: i64,
    fetched_from: i64,
    verified: bool,
}

impl Resume {
    fn new(claim: &Claim) -> Self {
        Resume {
            generation: claim.generation,
            rewind: RESUME_REWIND,
            fetched_from: resume_from(claim.next_offset, RESUME_REWIND),
            verified: false,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Resumes {
    by_partition: HashMap<i32, Resume>,
}

impl Resumes {
    /// Judges a batch of `claim`'s partition whose first message is at `first_offset`.
    pub(crate) fn check(&mut self, claim: &Claim, first_offset: i64) -> Check {
        let resume = self
            .by_partition
            .entry(claim.partition)
            .or_insert_with(|| Resume::new(claim));
        if resume.generation != claim.generation {
            *resume = Resume::new(claim); // claimed again since
        }
        if resume.verified || first_offset <= claim.next_offset {
            resume.verified = true;
            return Check::Proceed;
        }
        if resume.fetched_from == 0 {
            // Nothing older can be fetched: the broker no longer holds those offsets.
            tracing::error!(
                partition = claim.partition,
                from = claim.next_offset,
                to = first_offset,
                "Events this projection had not applied are gone from the topic (retention?); continuing after them."
            );
            resume.verified = true;
            return Check::Proceed;
        }
        resume.rewind = resume.rewind.saturating_mul(8);
        resume.fetched_from = resume_from(claim.next_offset, resume.rewind);
        tracing::warn!(
            partition = claim.partition,
            stored = claim.next_offset,
            first = first_offset,
            refetch_from = resume.fetched_from,
            "The broker resumed past the stored position; fetching from further back."
        );
        Check::Seek(resume.fetched_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(next_offset: i64, generation: i64) -> Claim {
        Claim {
            partition: 3,
            next_offset,
            generation,
        }
    }

    #[test]
    fn a_fetch_that_covers_the_position_proceeds_and_stays_verified() {
        let mut resumes = Resumes::default();
        assert_eq!(resumes.check(&claim(50_000, 1), 40_000), Check::Proceed);
        // Later batches are past the position, which is fine once verified.
        assert_eq!(resumes.check(&claim(50_000, 1), 60_000), Check::Proceed);
    }

    #[test]
    fn a_fetch_that_skipped_the_position_seeks_further_back_until_offset_zero() {
        let mut resumes = Resumes::default();
        let c = claim(100_000, 1);
        assert_eq!(resumes.check(&c, 100_005), Check::Seek(100_000 - 80_000));
        assert_eq!(resumes.check(&c, 100_005), Check::Seek(0));
        // From offset 0 there is nothing older to fetch.
        assert_eq!(resumes.check(&c, 100_005), Check::Proceed);
    }

    #[test]
    fn a_new_claim_is_checked_again() {
        let mut resumes = Resumes::default();
        assert_eq!(resumes.check(&claim(20_000, 1), 10_000), Check::Proceed);
        assert_eq!(resumes.check(&claim(30_000, 2), 30_001), Check::Seek(0));
    }

    #[test]
    fn a_partition_read_from_its_start_proceeds() {
        let mut resumes = Resumes::default();
        assert_eq!(resumes.check(&claim(0, 1), 0), Check::Proceed);
        let mut resumes = Resumes::default();
        assert_eq!(resumes.check(&claim(4, 1), 0), Check::Proceed);
    }
}
