//! Live change notices. After a processor commits a batch of one partition, it publishes on its
//! projection's channel ([`naming::live_channel`](crate::naming::live_channel), Redis pub/sub)
//! which users the batch touched and the last offset it applied. The query API's live streams
//! (`GET /v1/me/live`) turn a notice into a fresh read of each subscribed user's state, sent as
//! a Server-Sent Event whose id is the consistency token of that offset. One message per batch,
//! whatever the number of subscribers; a notice only says *that* something changed, never what,
//! so a lost one (Redis unreachable for a moment) delays an update until the user's next change
//! or reconnect and changes nothing that was applied.

use serde::{Deserialize, Serialize};

/// One committed batch of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveNotice {
    pub partition: i32,
    /// The last offset the batch applied: every user below has their changes up to it applied.
    pub offset: i64,
    pub users: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_compact_json() {
        let notice = LiveNotice {
            partition: 3,
            offset: 41,
            users: vec![7, 9],
        };
        let text = serde_json::to_string(&notice).unwrap();
        assert_eq!(text, r#"{"partition":3,"offset":41,"users":[7,9]}"#);
        assert_eq!(serde_json::from_str::<LiveNotice>(&text).unwrap(), notice);
    }
}
