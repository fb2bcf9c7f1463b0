//! A Confluent-compatible Schema Registry for Avro: the HTTP API ([`router`], [`serve`]),
//! its durable store ([`SchemaStore`]), compatibility checks ([`CompatibilityLevel`]) and a
//! client for any Confluent-compatible registry ([`RegistryClient`]).
//!
//! Semantics follow Confluent's registry: ids are global and never reused, the same schema
//! registered again under a subject returns its existing id without a new version, the same
//! schema under another subject reuses its id, versions count from 1 per subject and keep
//! counting after soft deletes, and registrations are checked against the subject's
//! compatibility level with real Avro schema resolution. See `schema` for what "the same
//! schema" means and `compat` for how partial compatibility is treated. Error codes and
//! texts are Confluent's. Only Avro is supported, with Confluent's schema references (a
//! schema using the named types of other registered versions; see `references`); JSON
//! Schema and Protobuf are refused (42201).

mod client;
mod compat;
mod config;
mod error;
mod model;
mod normalize;
mod references;
mod schema;
mod server;
mod store;

pub use client::RegistryClient;
pub use compat::{CompatibilityLevel, PreviousVersion, check as check_compatibility};
pub use config::RegistryServerConfig;
pub use error::RegistryError;
pub use model::{RegisteredSchema, SchemaReference, SubjectVersion, VersionSpec, Visibility};
pub use schema::ParsedSchema;
pub use server::{RESPONSE_CONTENT_TYPE, router, router_with_config, serve, serve_with_config};
pub use store::{Registration, SchemaStore};
