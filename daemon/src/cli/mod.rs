//! The command line: one module per subcommand.

use clap::{Parser, Subcommand};

pub mod apdu;
pub mod audit;
pub mod batch;
pub mod bench;
pub mod bench_calibrate;
pub mod bench_echo;
pub mod bench_truth;
pub mod card;
pub mod cards;
pub mod delivery;
pub mod demo;
pub mod extract;
pub mod fixtures;
pub mod keys;
pub mod mailer;
pub mod pki;
pub mod readers;
pub mod serve;
pub mod sim;

/// idcardd: smart-card and biometric middleware for national ID card issuance.
#[derive(Debug, Parser)]
#[command(name = "idcardd", version, about)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace with APDUs in hex).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List readers (PC/SC and simulated) and whether a card is present.
    Readers(readers::Args),
    /// Card operations (info, terminate, unblock).
    #[command(subcommand)]
    Card(card::Command),
    /// Send raw APDUs (hex) to a card and print the decoded responses.
    Apdu(apdu::Args),
    /// Run a simulated national ID card (e.g. behind vsmartcard-vpcd).
    #[command(subcommand)]
    Sim(sim::Command),
    /// Benchmarks and accuracy reports.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Extract minutiae from a scan and write a template.
    Extract(extract::Args),
    /// Show the product end to end on simulated readers (no hardware needed).
    Demo(demo::Args),
    /// Document signing PKI (test CSCA and Document Signer).
    #[command(subcommand)]
    Pki(pki::Command),
    /// Generated test data (synthetic fingerprints with ground truth).
    #[command(subcommand)]
    Fixtures(fixtures::Command),
    /// Batch personalization of applicant records on several readers (run, resume, status).
    #[command(subcommand)]
    Batch(batch::Command),
    /// Run the JSON-RPC daemon on ZeroMQ until SIGTERM/SIGINT.
    Serve(serve::Args),
    /// Delivery office through the daemon: begin, verify, activate; supervisor reset.
    #[command(subcommand)]
    Delivery(delivery::Command),
    /// The tamper-evident audit trail: verify, show.
    #[command(subcommand)]
    Audit(audit::Command),
    /// The issuer's keys in the PKCS#11 token (SoftHSM embedded, any HSM by configuration).
    #[command(subcommand)]
    Keys(keys::Command),
    /// The PIN mailer: print the sealed PIN letters for the print shop.
    #[command(subcommand)]
    Mailer(mailer::Command),
    /// After production, through the daemon: dispatch to an office, receipt there, a card
    /// reported lost, a document's status.
    #[command(subcommand)]
    Cards(cards::Command),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Readers(args) => readers::run(args),
        Command::Card(cmd) => card::run(cmd),
        Command::Apdu(args) => apdu::run(args),
        Command::Sim(cmd) => sim::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Extract(args) => extract::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Pki(cmd) => pki::run(cmd),
        Command::Fixtures(cmd) => fixtures::run(cmd),
        Command::Batch(cmd) => batch::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Delivery(cmd) => delivery::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Mailer(cmd) => mailer::run(cmd),
        Command::Cards(cmd) => cards::run(cmd),
    }
}
