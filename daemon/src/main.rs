//! `idcardd`: parses the command line, sets up logging and hands over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    // OpenCV reads its decoder pixel limit when it is loaded, before main: start again with it
    // in the environment (issue 18). On failure the header checks still hold.
    if let Err(e) = matcher::image::reexec_with_decoder_limit() {
        eprintln!("warning: cannot set OpenCV's decoder pixel limit: {e}");
    }
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
