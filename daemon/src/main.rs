//! `idcardd`: parses the command line, sets up logging and hands over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = idcardd::cli::Cli::parse();
    idcardd::logging::init(cli.verbose);
    match idcardd::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
