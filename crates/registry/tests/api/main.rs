//! Integration tests of the registry over real sockets: the HTTP API driven with reqwest
//! and `RegistryClient`, against a server on 127.0.0.1:0 with a temporary store.

mod client;
mod compatibility;
mod config;
mod deletion;
mod durability;
mod limits;
mod negotiation;
mod properties;
mod references;
mod registration;
mod support;
