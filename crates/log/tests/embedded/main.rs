//! Integration tests of the embedded log, on real files in temporary directories.

mod common;
mod crash;
mod failure;
mod groups;
mod reopen;
mod roundtrip;
mod segments;
mod torn;
