//! The channel report's recent days, summed ahead of anyone asking: each
//! node sums the whole days of the last month that are not kept yet (at
//! start, then hourly), so the console's report page and
//! `GET /v1/reports/channels` read kept sums instead of counting a day's
//! messages the first time someone looks (see [`crate::store::report_days`]).

use crate::clock::Clock;
use crate::every::Every;
use crate::store::Store;
use crate::store::report_days::DAY_MS;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the newly ended day is looked for.
const SUM_EVERY: Duration = Duration::from_secs(3_600);
/// Days kept summed back from today: the console's longest default period.
const DAYS: i64 = 31;

/// Keep the last [`DAYS`] whole days summed until `stop`.
pub async fn run(store: Arc<dyn Store>, clock: Arc<Clock>, stop: watch::Receiver<bool>) {
    let mut every = Every::new(SUM_EVERY, stop);
    while every.tick().await {
        let now = clock.now();
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        // Summing a day is a side effect of reporting on it.
        if let Err(e) = store
            .channel_report(today - DAYS * DAY_MS, today, Vec::new(), now)
            .await
        {
            tracing::warn!("cannot sum the report's recent days: {e}");
        }
    }
}
