//! `sandboxctl`: the command-line client of sandboxd. Parses the command line, runs one verb
//! and turns its result into an exit code.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// One module per verb.
mod commands;
/// A private daemon for one run when none answers.
mod embedded;
/// Sizes and durations on the command line.
mod units;

/// Where sandboxd listens unless told otherwise.
const DEFAULT_SOCKET: &str = "/run/sandboxd/sandboxd.sock";
/// The exit code when `run` fails before the command could report one (as `docker run`).
const RUN_FAILED: i32 = 125;

#[derive(Debug, Parser)]
#[command(
    name = "sandboxctl",
    version,
    about = "Run commands in sandboxd sandboxes"
)]
struct Cli {
    /// The daemon's socket
    #[arg(long, global = true, env = "SANDBOXD_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    socket: PathBuf,
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Run a command in a new sandbox and stream its output; exits with the command's status
    #[command(
        override_usage = "sandboxctl run [OPTIONS] [--] <CMD> [ARGS]...",
        after_help = "Exit status: the command's code, 128+N for signal N, 124 after a timeout, \
                      137 after an OOM kill, 125 when sandboxctl or the daemon failed.\n\
                      Stdin is forwarded when it is not a terminal. SIGINT and SIGTERM are \
                      passed on to the command."
    )]
    Run(Box<commands::run::RunArgs>),
    /// Show the daemon's version, cgroup hierarchy and live sandboxes
    Status,
}

fn main() {
    let cli = Cli::parse();
    let (result, failed) = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => match cli.command {
            Verb::Run(args) => (
                runtime.block_on(commands::run::execute(&cli.socket, *args)),
                RUN_FAILED,
            ),
            Verb::Status => (runtime.block_on(commands::status::execute(&cli.socket)), 1),
        },
        Err(err) => (
            Err(anyhow::Error::new(err).context("starting the async runtime")),
            RUN_FAILED,
        ),
    };
    let code = result.unwrap_or_else(|err| {
        eprintln!("sandboxctl: {err:#}");
        failed
    });
    let _ = std::io::stdout().flush();
    // Exit without waiting for the stdin thread, which may be blocked in a read.
    std::process::exit(code);
}
