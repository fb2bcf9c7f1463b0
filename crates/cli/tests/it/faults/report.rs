//! One line per scenario and backend, for the table `scripts/test` prints after the run.
//! Written to `$CLICKSTREAM_FAULT_REPORT/<scenario>--<backend>.json` when that is set.

use crate::faults::ledger::Outcome;

/// Records `outcome` for the matrix and asserts it is exact.
pub fn record(scenario: &str, backend: &str, rounds: usize, outcome: Outcome) {
    if let Ok(dir) = std::env::var("CLICKSTREAM_FAULT_REPORT") {
        let line = serde_json::json!({
            "scenario": scenario,
            "backend": backend,
            "rounds": rounds,
            "acked": outcome.acked,
            "lost": outcome.lost,
            "duplicated": outcome.duplicated,
            "invalid_acked": outcome.invalid_acked,
            "invalid_wrong": outcome.invalid_wrong,
        });
        let _ = std::fs::create_dir_all(&dir);
        let path = std::path::Path::new(&dir).join(format!("{scenario}--{backend}.json"));
        std::fs::write(&path, line.to_string()).expect("fault report written");
    }
    assert!(
        outcome.acked > 0 && outcome.invalid_acked > 0,
        "{scenario} on {backend}: nothing acknowledged, the scenario proves nothing: {outcome:?}"
    );
    assert!(
        outcome.exact(),
        "{scenario} on {backend}: not exactly once: {outcome:?}"
    );
}
