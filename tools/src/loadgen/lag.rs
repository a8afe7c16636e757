//! Consumer lag over time: the processors' `/metrics` (`processor_consumer_lag`, per projection
//! and partition) summed once a second while the crowd runs.

/// The sum of every `processor_consumer_lag` sample in a Prometheus text exposition.
pub(super) fn total_lag(metrics: &str) -> i64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix("processor_consumer_lag")
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .map(|lag| lag as i64)
        .sum()
}

/// The lag now, summed over every processor instance at `urls`, or `None` when one's metrics
/// could not be read.
pub(super) async fn sample(client: &reqwest::Client, urls: &[String]) -> Option<i64> {
    let mut lag = 0;
    for url in urls {
        let response = client.get(url).send().await.ok()?;
        let text = response.error_for_status().ok()?.text().await.ok()?;
        lag += total_lag(&text);
    }
    Some(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_sums_every_partition_of_every_projection_and_nothing_else() {
        let metrics = "\
# HELP processor_consumer_lag Messages behind the partition's high watermark.
# TYPE processor_consumer_lag gauge
processor_consumer_lag{partition=\"0\",processor=\"feed.v1\"} 12
processor_consumer_lag{partition=\"1\",processor=\"profiles.v1\"} 3
processor_consumer_lag_total_ignored 100
processor_applied_offset{partition=\"0\",processor=\"feed.v1\"} 999
";
        assert_eq!(total_lag(metrics), 15);
    }
}
