//! `sandboxctl`: the command-line client of sandboxd. Parses the command line, runs one verb
//! and turns its result into an exit code.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// OCI bundles (`run --bundle`) as run requests.
mod bundle;
/// One module per verb.
mod commands;
/// A private daemon for one run when none answers.
mod embedded;
/// The sandbox flags `run` and `create` share.
mod flags;
/// Following a run or exec: output, stdin, signals, window size.
mod stream;
/// Plain-text tables.
mod table;
/// The local terminal: raw mode and window size.
mod tty;
/// Sizes and durations on the command line.
mod units;

use commands::{
    cp, create, exec, export_bundle, inspect, kill, logs, ls, pause, policy, resume, rm, run,
    state, stats, status, NoDaemon,
};

/// Where sandboxd listens unless told otherwise.
const DEFAULT_SOCKET: &str = "/run/sandboxd/sandboxd.sock";
/// The exit code when `run` or `exec` fails before the command could report one (as
/// `docker run`).
const RUN_FAILED: i32 = 125;
/// The exit code of every other failure, and of any verb when no daemon answers (except `run`,
/// which starts an embedded one).
const FAILED: i32 = 1;

/// What `run` and `exec` exit with.
const RUN_EXIT_HELP: &str = "Exit status: the command's code, 128+N for signal N, 124 after a \
                             timeout, 137 after an OOM kill, 125 when sandboxctl or the daemon \
                             failed.";

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
        after_help = format!("{RUN_EXIT_HELP}\nStdin is forwarded when it is not a terminal. \
                              SIGINT and SIGTERM are passed on to the command.")
    )]
    Run(Box<run::RunArgs>),
    /// Create a long-lived sandbox and print its id
    Create(Box<create::CreateArgs>),
    /// Run a command in a long-lived sandbox; exits with the command's status
    #[command(
        override_usage = "sandboxctl exec [OPTIONS] <ID> [--] <CMD> [ARGS]...",
        after_help = format!("{RUN_EXIT_HELP} 1 when no daemon answers.\n-i forwards stdin; \
                              -t runs on a terminal (raw mode here, restored on exit). \
                              SIGINT and SIGTERM are passed on to the command. The exec goes on \
                              if sandboxctl is killed: see `logs`.")
    )]
    Exec(Box<exec::ExecArgs>),
    /// List long-lived sandboxes
    Ls(ls::LsArgs),
    /// Show a sandbox in detail, as JSON
    Inspect(inspect::InspectArgs),
    /// Show a sandbox's resource usage
    Stats(stats::StatsArgs),
    /// Print an exec's output from its start (-f: and follow it)
    Logs(logs::LogsArgs),
    /// Send a signal to an exec, or to every process of a sandbox
    Kill(kill::KillArgs),
    /// Freeze every process of a sandbox
    Pause(pause::PauseArgs),
    /// Thaw a paused sandbox
    Resume(resume::ResumeArgs),
    /// Destroy sandboxes
    Rm(rm::RmArgs),
    /// Copy files or directories between the host and a sandbox
    Cp(cp::CpArgs),
    /// Show the daemon's version, cgroup hierarchy and live sandboxes
    Status,
    /// Write a sandbox's OCI bundle (config.json and rootfs) for runc or crun
    #[command(override_usage = "sandboxctl export-bundle [OPTIONS] <DIR> [-- <CMD> [ARGS]...]")]
    ExportBundle(Box<export_bundle::ExportArgs>),
    /// Print a sandbox's OCI runtime state as JSON
    State(state::StateArgs),
    /// Validate policy files, or show a policy with its defaults filled in
    Policy(policy::PolicyArgs),
}

fn main() {
    let cli = Cli::parse();
    let failed = match cli.command {
        Verb::Run(_) | Verb::Exec(_) => RUN_FAILED,
        _ => FAILED,
    };
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(&cli.socket, cli.command)),
        Err(err) => Err(anyhow::Error::new(err).context("starting the async runtime")),
    };
    let code = result.unwrap_or_else(|err| {
        eprintln!("sandboxctl: {err:#}");
        if err.is::<NoDaemon>() {
            FAILED
        } else {
            failed
        }
    });
    let _ = std::io::stdout().flush();
    // Exit without waiting for the stdin thread, which may be blocked in a read.
    std::process::exit(code);
}

async fn dispatch(socket: &Path, verb: Verb) -> anyhow::Result<i32> {
    match verb {
        Verb::Run(args) => run::execute(socket, *args).await,
        Verb::Create(args) => create::execute(socket, *args).await,
        Verb::Exec(args) => exec::execute(socket, *args).await,
        Verb::Ls(args) => ls::execute(socket, args).await,
        Verb::Inspect(args) => inspect::execute(socket, args).await,
        Verb::Stats(args) => stats::execute(socket, args).await,
        Verb::Logs(args) => logs::execute(socket, args).await,
        Verb::Kill(args) => kill::execute(socket, args).await,
        Verb::Pause(args) => pause::execute(socket, args).await,
        Verb::Resume(args) => resume::execute(socket, args).await,
        Verb::Rm(args) => rm::execute(socket, args).await,
        Verb::Cp(args) => cp::execute(socket, args).await,
        Verb::Status => status::execute(socket).await,
        Verb::ExportBundle(args) => export_bundle::execute(socket, *args).await,
        Verb::State(args) => state::execute(socket, args).await,
        Verb::Policy(args) => policy::execute(socket, args).await,
    }
}
