//! Waiting for a condition, the one way tests here wait: poll a probe until it succeeds,
//! and fail with the probe's last word when the deadline passes. Never a bare sleep
//! standing in for "long enough".

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` until it returns `Ok`, and returns that value. Panics when `within`
/// passes, with `what` and the last `Err` the probe gave (what it was still waiting for).
/// Polls quickly at first, then every 250 ms at most.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not reached after {within:?}; last: {last}"
                );
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// `Ok(())` when `condition`, else `Err(detail())`: for probes that check a boolean.
pub fn check(condition: bool, detail: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(detail()) }
}
