//! Helpers shared by the workspace's integration tests, so that each test file keeps only what
//! is its own.
//!
//! - [`paths`]: the repository root, the committed fixtures (`fixtures/applicants`,
//!   `fixtures/fingerprints`) and the real scans in `../shared/fingerprints`, which may be
//!   absent: [`paths::shared_fingerprints`] then says the test is skipped and returns `None`.
//! - [`fixtures`]: an applicant record as JSON, a fingerprint scan's bytes.
//! - [`data`]: deterministic byte patterns for file contents.
//! - [`process`]: run a binary to completion, read its output.
//! - [`python`]: a python3 that has pyzmq, for the tests that drive the daemon from Python.
//! - [`images`]: hand-made TIFFs whose headers say what an image-limit test needs.
//! - [`pg`]: a throwaway PostgreSQL server (initdb + pg_ctl in a temporary directory, run as
//!   the `postgres` user when the tests run as root) that can be stopped, restarted and have
//!   its connections killed; [`pg::skip_unless_available`] when PostgreSQL is not installed.
//!
//! With the `issuance` feature (for the tests of issuance, the daemon and the end-to-end crate),
//! also the helpers built on the issuance core:
//! - `hsm`: SoftHSM tokens holding the issuer's keys, one SoftHSM configuration per process.
//! - `ids`: national codes with a valid check digit.
//! - `pki`: a TEST-ONLY PKI in a folder and its Document Signer.
//! - `perso`: personalization plans from fixture records, simulated cards personalized.
//! - `fixtures::usable_templates`: the fixture ISO templates that pass a profile's QC minimums.
//!
//! Every helper panics with a message saying what went wrong: these are tests. Only ever a
//! dev-dependency (or a dependency of a crate that is itself test code):
//! `scripts/check_layers.py` refuses it among a library crate's dependencies.
//!
//! ```
//! use test_support::{fixtures, paths};
//!
//! assert!(paths::applicants().join("manifest.toml").is_file());
//! let record = fixtures::applicant("national-valid-1.json");
//! assert_eq!(record["profile"], "national-id");
//! ```
#![deny(missing_docs)]

pub mod data;
pub mod fixtures;
pub mod images;
pub mod paths;
pub mod pg;
pub mod process;
pub mod python;

#[cfg(feature = "issuance")]
pub mod hsm;
#[cfg(feature = "issuance")]
pub mod ids;
#[cfg(feature = "issuance")]
pub mod learned;
#[cfg(feature = "issuance")]
pub mod perso;
#[cfg(feature = "issuance")]
pub mod pki;
