//! One type for every credential clickstream handles: [`Secret`].
//!
//! A `Secret` reads from config files and the environment like a plain string, but its
//! `Debug`, `Display` and serialization show only [`REDACTED`], so printing a config
//! (`clickstream config`), logging it or returning it from an API cannot leak it. The value
//! is given only by [`Secret::expose`], at the point where a library needs it.
//!
//! Two containers build on it: [`Settings`], free-form `key = value` options for a
//! library (librdkafka, object_store) whose secret-looking keys hold `Secret`s, and
//! [`SecretUrl`], a URL that may carry a password in its userinfo.
//!
//! This crate depends on no other crate of ours, so every crate can use it.

mod secret;
mod secret_url;
mod settings;

pub use secret::{REDACTED, Secret};
pub use secret_url::SecretUrl;
pub use settings::{Settings, is_secret_key};
