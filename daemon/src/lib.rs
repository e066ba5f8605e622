//! idcardd: the shell around the issuance core. The domain lives in the [`issuance`] crate;
//! this crate drives it from the outside.
//!
//! - [`service`]: the composition root: [`service::Service::open`] builds the profiles,
//!   stores, readers, batch line and event publisher once from a [`service::ServiceConfig`].
//! - [`api`]: the JSON-RPC methods, one module each, listed in [`api::METHODS`]; each parses
//!   its own parameters, calls a workflow of [`issuance`] and shapes its reply. Domain errors
//!   become stable API codes in one place ([`api::ErrorCode::of`]).
//! - [`server`]: the ZeroMQ ROUTER/PUB loop, limits, shutdown, the configuration file.
//! - [`metrics`]: Prometheus metrics of the line and the API, on a loopback `/metrics` endpoint.
//! - [`client`]: a small client of the same protocol (the CLI's delivery commands, the demo).
//! - [`cli`]: the binary's subcommands, one module each; QA reports come from the [`qa`] crate.
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod client;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod service;
