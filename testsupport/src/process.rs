//! Running a binary (`env!("CARGO_BIN_EXE_idcardd")`, python3, openssl) to completion.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs `program ARGS...` to completion, its stdin closed, and returns what it wrote.
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_env(program, args, &[])
}

/// [`run`] with `envs` added to the environment.
pub fn run_with_env<I, S>(program: impl AsRef<OsStr>, args: I, envs: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()))
}

/// Runs `program ARGS...`, which must succeed, and reads its standard output as one JSON value
/// (the `--json` reports of `idcardd bench`).
pub fn json_of<I, S>(program: impl AsRef<OsStr>, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(program, args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON value ({e}): {}", text(&out)))
}

/// Stdout then stderr, as text: what a failed assertion should show.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The path of `program` on `PATH`, if it is there.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
