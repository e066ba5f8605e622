//! idcardd: smart-card and biometric middleware for national ID card issuance.
//!
//! The binary's subcommands live in [`cli`], one module each.
#![deny(missing_docs)]

pub mod api;
pub mod applicant;
pub mod audit;
pub mod batch;
pub mod cli;
pub mod client;
pub mod delivery;
pub mod journal;
pub mod lds;
pub mod logging;
pub mod personalize;
pub mod pki;
pub mod profile;
pub mod readers;
pub mod report;
pub mod server;
pub mod service;
pub mod sim_watch;
