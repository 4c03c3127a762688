//! The admission webhook server: TLS, routing, health and metrics around [`crate::admission`].

pub mod metrics;
pub mod server;
pub mod tls;
