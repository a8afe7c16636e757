//! Reads waiting on a consistency token, bounded twice: in total per instance, so waiting reads
//! cannot hold every task, and per caller, so one client cannot take the whole total from
//! everyone else. Past either bound a read is refused at once (503), never queued.
//!
//! A caller is the proven user when the read carries initData; an anonymous read is counted
//! against the write its token names. A token is handed to the one client that made the write,
//! and it is signed, so an anonymous client can only hold as many waits as it made writes.

use std::collections::HashMap;
use std::sync::Mutex;

use surge_schemas::Position;
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    User(i64),
    Write { partition: i32, offset: i64 },
}

impl Caller {
    pub(crate) fn of(reader: Option<i64>, position: &Position) -> Self {
        match reader {
            Some(user_id) => Caller::User(user_id),
            None => Caller::Write {
                partition: position.partition,
                offset: position.offset,
            },
        }
    }
}

/// Which bound refused a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    Instance,
    Caller,
}

pub(crate) struct Waiters {
    total: Semaphore,
    per_caller: Mutex<HashMap<Caller, usize>>,
    per_caller_max: usize,
}

/// One read's place among the waiters; leaving it (drop) frees the place.
pub(crate) struct Waiting<'a> {
    _total: SemaphorePermit<'a>,
    waiters: &'a Waiters,
    caller: Caller,
}

impl Waiters {
    pub(crate) fn new(total: usize, per_caller_max: usize) -> Self {
        Waiters {
            total: Semaphore::new(total),
            per_caller: Mutex::new(HashMap::new()),
            per_caller_max,
        }
    }

    pub(crate) fn try_enter(&self, caller: Caller) -> Result<Waiting<'_>, Full> {
        let total = self.total.try_acquire().map_err(|_| Full::Instance)?;
        let mut per_caller = self.per_caller.lock().expect("never poisoned");
        let count = per_caller.entry(caller).or_insert(0);
        if *count >= self.per_caller_max {
            return Err(Full::Caller);
        }
        *count += 1;
        Ok(Waiting {
            _total: total,
            waiters: self,
            caller,
        })
    }

    #[cfg(test)]
    fn callers(&self) -> usize {
        self.per_caller.lock().unwrap().len()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut per_caller = self.waiters.per_caller.lock().expect("never poisoned");
        if let Some(count) = per_caller.get_mut(&self.caller) {
            *count -= 1;
            // Forget callers with no waiting read, so the map holds only the waiting ones.
            if *count == 0 {
                per_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_past_its_bound_is_refused_while_others_still_enter() {
        let waiters = Waiters::new(10, 2);
        let first = waiters.try_enter(Caller::User(1)).unwrap();
        let _second = waiters.try_enter(Caller::User(1)).unwrap();
        assert_eq!(waiters.try_enter(Caller::User(1)).err(), Some(Full::Caller));
        let _other = waiters.try_enter(Caller::User(2)).unwrap();
        drop(first);
        let _again = waiters.try_enter(Caller::User(1)).unwrap();
    }

    #[test]
    fn the_instance_bound_holds_across_callers() {
        let waiters = Waiters::new(2, 5);
        let _a = waiters.try_enter(Caller::User(1)).unwrap();
        let _b = waiters.try_enter(Caller::User(2)).unwrap();
        let write = Caller::Write {
            partition: 0,
            offset: 7,
        };
        assert_eq!(waiters.try_enter(write).err(), Some(Full::Instance));
    }

    #[test]
    fn a_refused_read_takes_no_place_and_leaving_forgets_the_caller() {
        let waiters = Waiters::new(1, 1);
        let held = waiters.try_enter(Caller::User(1)).unwrap();
        assert!(waiters.try_enter(Caller::User(1)).is_err());
        assert!(waiters.try_enter(Caller::User(2)).is_err());
        drop(held);
        assert_eq!(waiters.callers(), 0);
        let _next = waiters.try_enter(Caller::User(2)).unwrap();
    }
}
