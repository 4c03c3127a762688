//! The admission webhook server: TLS, routing, health and metrics around [`crate::admission`],
//! the namespaces it leaves alone, the uninstall guard, and a shutdown that drains its clients.

pub mod endpoints;
pub mod metrics;
pub mod scope;
pub mod server;
pub mod tls;
pub mod uninstall_guard;
