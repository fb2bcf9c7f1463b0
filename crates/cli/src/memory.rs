//! How much memory the process holds, as gauges read at each scrape of `/metrics`: the
//! resident set the kernel counts, and, when the binary's allocator reports them, the bytes
//! live in allocations and the pages the allocator keeps resident. The difference between
//! the last two is memory freed but kept for reuse; between the allocator's resident pages
//! and the process's, the mapped files (the binary's code, the geo-IP databases) and what
//! other allocators hold.
//!
//! The allocator is chosen by the binary (`main.rs`), not this library, so the binary hands
//! its statistics reader to [`report_allocator`]; without one (tests, other embedders) the
//! two allocator gauges are not exported.

use std::sync::OnceLock;

use metrics::{Unit, describe_gauge, gauge};

/// Resident set size of the process, Prometheus' standard name (Linux: `VmRSS`).
pub const PROCESS_RESIDENT: &str = "process_resident_memory_bytes";
/// Bytes in live allocations, as the allocator counts them.
pub const ALLOCATED: &str = "clickstream_memory_allocated_bytes";
/// Pages the allocator holds resident: live allocations, their size-class slack, its own
/// metadata, and freed pages it keeps to reuse before returning them to the kernel.
pub const ALLOCATOR_RESIDENT: &str = "clickstream_memory_allocator_resident_bytes";

/// What the allocator says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes of resident pages the allocator maps.
    pub resident: u64,
}

static ALLOCATOR: OnceLock<fn() -> Option<AllocatorStats>> = OnceLock::new();

/// Exports `read`'s answer at each scrape. The first reader given is kept.
pub fn report_allocator(read: fn() -> Option<AllocatorStats>) {
    let _ = ALLOCATOR.set(read);
}

/// Help texts, for `# HELP` lines.
pub(crate) fn describe() {
    describe_gauge!(
        PROCESS_RESIDENT,
        Unit::Bytes,
        "Resident set size of the process: anonymous memory and mapped file pages"
    );
    describe_gauge!(
        ALLOCATED,
        Unit::Bytes,
        "Bytes in live allocations, as the allocator counts them"
    );
    describe_gauge!(
        ALLOCATOR_RESIDENT,
        Unit::Bytes,
        "Resident pages the allocator holds: live allocations, its metadata, and freed pages kept for reuse"
    );
}

/// Sets the gauges to what they are now.
pub(crate) fn record() {
    if let Some(bytes) = process_resident() {
        gauge!(PROCESS_RESIDENT).set(bytes as f64);
    }
    if let Some(stats) = ALLOCATOR.get().and_then(|read| read()) {
        gauge!(ALLOCATED).set(stats.allocated as f64);
        gauge!(ALLOCATOR_RESIDENT).set(stats.resident as f64);
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes; `None` where there is no such file.
fn process_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss(&status)
}

fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tclickstream\nVmHWM:\t  412000 kB\nVmRSS:\t  376184 kB\nThreads:\t41\n";
        assert_eq!(vm_rss(status), Some(376_184 * 1024));
        assert_eq!(vm_rss("Name:\tx\n"), None);
        assert_eq!(vm_rss("VmRSS:\tlots\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set() {
        assert!(process_resident().is_some_and(|bytes| bytes > 0));
    }
}
