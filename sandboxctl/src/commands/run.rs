//! `sandboxctl run`: runs a command in a new sandbox, streams its output live, forwards stdin
//! and SIGINT/SIGTERM, and exits with the command's status as a shell would.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use agent_sdk::{Client, RunBuilder};
use clap::Args;

use super::CLIENT_NAME;
use crate::bundle;
use crate::embedded::{self, Embedded};
use crate::flags::{parse_sandbox_path, SandboxFlags};
use crate::stream::{forward_stdin, stream, Signals};
use crate::units::{format_millis, format_size, parse_duration};

/// Flags of `sandboxctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    sandbox: SandboxFlags,
    /// Wall-clock limit: 500ms, 30s, 2m, 1h or plain seconds (fractions allowed)
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    timeout: Option<Timeout>,
    /// Working directory in the sandbox [default: /workspace]
    #[arg(long, value_name = "DIR", value_parser = parse_sandbox_path)]
    cwd: Option<String>,
    /// Run an OCI bundle (DIR/config.json and its root): every field sandboxd supports is
    /// mapped, the others are refused in one list; flags given here apply on top
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    bundle: Option<PathBuf>,
    /// The command and its arguments
    #[arg(value_name = "CMD", required_unless_present = "bundle", trailing_var_arg = true, num_args = 1..)]
    command: Vec<String>,
}

/// A `--timeout` as given, kept for the message when it passes.
#[derive(Debug, Clone)]
struct Timeout {
    text: String,
    duration: Duration,
}

/// Runs the command and returns the exit code sandboxctl should end with.
pub async fn execute(socket: &Path, args: RunArgs) -> anyhow::Result<i32> {
    let mut signals = Signals::new(false)?;
    let (client, daemon) = match connect(socket, &mut signals).await? {
        Connected::Daemon(client) => (client, None),
        Connected::Embedded(client, daemon) => (client, Some(daemon)),
        Connected::Interrupted(sig) => return Ok(128 + sig),
    };
    let result = run(&client, &args, &mut signals).await;
    // Close the connection first, so the daemon has nothing left to wind down.
    drop(client);
    if let Some(daemon) = daemon {
        daemon.stop().await;
    }
    result
}

enum Connected {
    Daemon(Client),
    Embedded(Client, Box<Embedded>),
    Interrupted(i32),
}

/// Connects to the daemon at `socket`, or to an embedded one if none answers and we may.
async fn connect(socket: &Path, signals: &mut Signals) -> anyhow::Result<Connected> {
    match Client::connect_as(socket, CLIENT_NAME).await {
        Ok(client) => return Ok(Connected::Daemon(client)),
        Err(err) if embedded::applies(&err) => {}
        Err(err) => return Err(err.into()),
    }
    eprintln!(
        "sandboxctl: no daemon at {}; starting an embedded sandboxd for this run",
        socket.display()
    );
    let mut daemon = Embedded::spawn()?;
    let ready = tokio::select! {
        ready = daemon.connect() => ready,
        sig = signals.recv_signal() => {
            daemon.stop().await;
            return Ok(Connected::Interrupted(sig));
        }
    };
    match ready {
        Ok(client) => Ok(Connected::Embedded(client, Box::new(daemon))),
        Err(err) => {
            daemon.stop().await;
            Err(err)
        }
    }
}

async fn run(client: &Client, args: &RunArgs, signals: &mut Signals) -> anyhow::Result<i32> {
    let stdin = !std::io::stdin().is_terminal();
    let mut run = args.builder(client).await?.stdin(stdin).start().await?;
    if stdin {
        forward_stdin(run.stdin_handle());
    }
    let status = stream(&mut run, signals).await?;
    if status.timed_out {
        let after = match &args.timeout {
            Some(t) => t.text.clone(),
            None => format_millis(status.duration_ms),
        };
        eprintln!("sandbox: timed out after {after}");
    } else if status.oom_killed {
        match status.memory_limit.or(args.sandbox.memory) {
            Some(limit) => eprintln!(
                "sandbox: killed: out of memory (limit {})",
                format_size(limit)
            ),
            None => eprintln!("sandbox: killed: out of memory"),
        }
    }
    Ok(status.shell_code())
}

impl RunArgs {
    async fn builder(&self, client: &Client) -> anyhow::Result<RunBuilder> {
        let mut b = match &self.bundle {
            Some(dir) => self.sandbox.apply(from_bundle(client, dir).await?)?,
            None => self
                .sandbox
                .apply(client.run(self.command.iter().cloned()))?,
        };
        if let Some(t) = &self.timeout {
            b = b.timeout(t.duration);
        }
        if let Some(dir) = &self.cwd {
            b = b.cwd(dir.clone());
        }
        Ok(b)
    }
}

/// A run of the bundle at `dir`; its notes go to stderr. A bundle's own seccomp profile is
/// accepted only when it is the policy's (e.g. a bundle `export-bundle` wrote): the policy's
/// profile is what the sandbox gets.
async fn from_bundle(client: &Client, dir: &Path) -> anyhow::Result<RunBuilder> {
    let b = bundle::load(dir)?;
    for note in &b.notes {
        eprintln!("sandboxctl: bundle: {note}");
    }
    if b.terminal {
        eprintln!(
            "sandboxctl: bundle: process.terminal: run on pipes (for a terminal: create, then exec -t)"
        );
    }
    let run = client.run_spec(b.spec.clone());
    if let Some(theirs) = &b.seccomp {
        let (config, _) = client
            .export_bundle(b.spec.clone())
            .await
            .context("rendering the policy's seccomp profile")?;
        let ours: serde_json::Value = serde_json::from_str(&config)?;
        if ours["linux"]["seccomp"] != *theirs {
            anyhow::bail!(
                "the bundle asks for what sandboxd does not support:\n  linux.seccomp: not the policy's profile (sandboxd applies the policy's seccomp profile; remove linux.seccomp or pick the policy whose profile it is)"
            );
        }
    }
    Ok(run)
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    Ok(Timeout {
        text: text.to_string(),
        duration: parse_duration(text)?,
    })
}

#[cfg(test)]
mod tests {
    use agent_sdk::{Mount, Rootfs};
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parse(argv: &[&str]) -> Result<RunArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("run").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn all_flags() {
        let args = parse(&[
            "--memory",
            "64M",
            "--pids",
            "32",
            "--cpus",
            "0.5",
            "--timeout",
            "1.5s",
            "--workspace-size",
            "1GiB",
            "--rootfs",
            "/srv/root",
            "--mount",
            "/a:/b:ro",
            "--mount",
            "/c:/d",
            "--env",
            "A=1=2",
            "--env",
            "B=",
            "--cwd",
            "/d",
            "--hostname",
            "box",
            "--",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        let sb = &args.sandbox;
        assert_eq!(sb.memory, Some(64 << 20));
        assert_eq!(sb.pids, Some(32));
        assert_eq!(sb.cpus, Some(0.5));
        let timeout = args.timeout.unwrap();
        assert_eq!(
            (timeout.text.as_str(), timeout.duration),
            ("1.5s", Duration::from_millis(1500))
        );
        assert_eq!(sb.workspace_size, Some(1 << 30));
        assert_eq!(
            sb.rootfs,
            Some(Rootfs::Path {
                path: "/srv/root".into()
            })
        );
        let mount = |h: &str, s: &str, ro| Mount {
            host: h.into(),
            sandbox: s.into(),
            read_only: ro,
        };
        assert_eq!(
            sb.mounts,
            [mount("/a", "/b", true), mount("/c", "/d", false)]
        );
        assert_eq!(
            sb.env,
            [("A".into(), "1=2".into()), ("B".into(), String::new())]
        );
        assert_eq!(args.cwd.as_deref(), Some("/d"));
        assert_eq!(sb.hostname.as_deref(), Some("box"));
        assert_eq!(args.command, ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn command_without_separator_keeps_its_flags() {
        let args = parse(&["ls", "-la", "--memory", "1"]).unwrap();
        assert_eq!(args.command, ["ls", "-la", "--memory", "1"]);
        assert_eq!(args.sandbox.memory, None);
        assert_eq!(
            parse(&["--rootfs", "host", "--", "--weird"])
                .unwrap()
                .command,
            ["--weird"]
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for argv in [
            &["--memory", "lots", "true"][..],
            &["--memory", "0", "true"],
            &["--pids", "0", "true"],
            &["--cpus", "-1", "true"],
            &["--cpus", "NaN", "true"],
            &["--timeout", "soon", "true"],
            &["--timeout", "0s", "true"],
            &["--mount", "/a", "true"],
            &["--mount", "/a:b", "true"],
            &["--mount", ":/b", "true"],
            &["--mount", "/a:/b:rx", "true"],
            &["--env", "NOVALUE", "true"],
            &["--env", "=v", "true"],
            &["--cwd", "rel", "true"],
            &["--memory", "1M"],
        ] {
            let err = parse(argv).expect_err(&format!("{argv:?} parsed"));
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }
}
