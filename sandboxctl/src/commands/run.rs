//! `sandboxctl run`: runs a command in a new sandbox, streams its output live, forwards stdin
//! and SIGINT/SIGTERM, and exits with the command's status as a shell would.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_sdk::{Client, Event, ExitStatus, Mount, Rootfs, Run, RunBuilder, RunStdin};
use anyhow::bail;
use clap::Args;
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::CLIENT_NAME;
use crate::embedded::{self, Embedded};
use crate::units::{format_millis, format_size, parse_duration, parse_size};

/// Bytes of stdin read at a time.
const STDIN_CHUNK: usize = 64 * 1024;
/// How long the command gets to die of SIGPIPE once our stdout is closed, before SIGKILL.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// The signal count at which sandboxctl stops forwarding and kills the sandbox.
const SIGNALS_BEFORE_KILL: u32 = 3;

/// Flags of `sandboxctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Memory limit: bytes, or k/M/G (binary units; KiB/MiB/GiB also accepted)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Most processes and threads at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pids: Option<u64>,
    /// CPU quota as a number of CPUs (0.5 = half of one)
    #[arg(long, value_name = "F", value_parser = parse_cpus)]
    cpus: Option<f64>,
    /// Wall-clock limit: 500ms, 30s, 2m, 1h or plain seconds (fractions allowed)
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    timeout: Option<Timeout>,
    /// Size of the /workspace tmpfs
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    workspace_size: Option<u64>,
    /// Root filesystem: the host's system folders (the default) or a directory
    #[arg(long, value_name = "host|PATH", value_parser = parse_rootfs)]
    rootfs: Option<Rootfs>,
    /// Bind host folder H at S in the sandbox, read-only with :ro (repeatable)
    #[arg(long = "mount", value_name = "H:S[:ro]", value_parser = parse_mount)]
    mounts: Vec<Mount>,
    /// Set an environment variable (repeatable)
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Working directory in the sandbox [default: /workspace]
    #[arg(long, value_name = "DIR", value_parser = parse_sandbox_path)]
    cwd: Option<String>,
    /// Hostname in the sandbox [default: the sandbox id]
    #[arg(long, value_name = "H")]
    hostname: Option<String>,
    /// The command and its arguments
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, num_args = 1..)]
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
    let mut signals = Signals::new()?;
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
        sig = signals.recv() => {
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
    let mut run = args.builder(client).stdin(stdin).start().await?;
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
        match status.memory_limit.or(args.memory) {
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
    fn builder(&self, client: &Client) -> RunBuilder {
        let mut b = client.run(self.command.iter().cloned());
        if let Some(bytes) = self.memory {
            b = b.memory(bytes);
        }
        if let Some(n) = self.pids {
            b = b.pids(n);
        }
        if let Some(cpus) = self.cpus {
            b = b.cpus(cpus);
        }
        if let Some(t) = &self.timeout {
            b = b.timeout(t.duration);
        }
        if let Some(bytes) = self.workspace_size {
            b = b.workspace_size(bytes);
        }
        b = match &self.rootfs {
            None | Some(Rootfs::Host) => b.rootfs_host(),
            Some(Rootfs::Path { path }) => b.rootfs_path(path.clone()),
        };
        for m in &self.mounts {
            b = b.mount(m.host.clone(), m.sandbox.clone(), m.read_only);
        }
        for (key, value) in &self.env {
            b = b.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            b = b.cwd(dir.clone());
        }
        if let Some(name) = &self.hostname {
            b = b.hostname(name.clone());
        }
        b
    }
}

/// Writes every chunk as it comes, forwarding signals meanwhile, until the exit.
async fn stream(run: &mut Run, signals: &mut Signals) -> anyhow::Result<ExitStatus> {
    let mut stdout = Sink {
        to_stdout: true,
        broken: false,
    };
    let mut stderr = Sink {
        to_stdout: false,
        broken: false,
    };
    let mut signalled = 0;
    // When set, the run gets SIGKILL then: it outlived the SIGPIPE sent for our closed stdout.
    let mut kill_at: Option<Instant> = None;
    loop {
        let deadline = async move {
            match kill_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = run.next_event() => event,
            sig = signals.recv() => {
                forward(run, sig, &mut signalled).await?;
                continue;
            }
            () = deadline => {
                kill_at = None;
                run.kill(Signal::SIGKILL as i32).await?;
                continue;
            }
        };
        let (sink, data) = match event {
            Some(Event::Stdout(data)) => (&mut stdout, data),
            Some(Event::Stderr(data)) => (&mut stderr, data),
            Some(Event::Exit(status)) => return Ok(status),
            Some(Event::Error(err)) => return Err(err.into()),
            None => bail!("the run ended without an exit status"),
        };
        let to_stdout = sink.to_stdout;
        let write = sink.write(data);
        tokio::pin!(write);
        let written = loop {
            tokio::select! {
                written = &mut write => break written,
                sig = signals.recv() => forward(run, sig, &mut signalled).await?,
            }
        };
        if !written && to_stdout {
            // Like a shell pipeline whose reader went away: end the command with SIGPIPE,
            // and the whole sandbox if that is not enough.
            run.kill(Signal::SIGPIPE as i32).await?;
            kill_at = Some(Instant::now() + PIPE_GRACE);
        }
    }
}

/// Passes a signal we got on to the run; the third one kills the sandbox instead.
async fn forward(run: &Run, sig: i32, signalled: &mut u32) -> anyhow::Result<()> {
    *signalled += 1;
    if *signalled < SIGNALS_BEFORE_KILL {
        return Ok(run.kill(sig).await?);
    }
    eprintln!("sandboxctl: got {signalled} signals; killing the sandbox");
    Ok(run.kill(Signal::SIGKILL as i32).await?)
}

/// Our stdout or stderr. After a failed write it swallows the rest.
struct Sink {
    to_stdout: bool,
    broken: bool,
}

impl Sink {
    /// Writes and flushes `data` on a blocking thread (a full pipe must not stall signal
    /// forwarding); false when this write failed (the first time only).
    async fn write(&mut self, data: Vec<u8>) -> bool {
        if self.broken {
            return true;
        }
        let to_stdout = self.to_stdout;
        let written = tokio::task::spawn_blocking(move || {
            if to_stdout {
                let mut out = std::io::stdout().lock();
                out.write_all(&data).and_then(|()| out.flush())
            } else {
                let mut out = std::io::stderr().lock();
                out.write_all(&data).and_then(|()| out.flush())
            }
        })
        .await;
        self.broken = !matches!(written, Ok(Ok(())));
        !self.broken
    }
}

/// Reads our stdin on a thread (a blocking read cannot be cancelled, and process exit ends
/// the thread) and feeds it to the run; closes the run's stdin at EOF.
fn forward_stdin(stdin: RunStdin) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                // An unreadable stdin (e.g. closed) ends it like EOF.
                Err(_) => return,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            // A failure means the run is over; its exit is reported by the event loop.
            if stdin.write(&chunk).await.is_err() {
                return;
            }
        }
        let _ = stdin.close().await;
    });
}

/// SIGINT and SIGTERM, caught so they can be forwarded to the run.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's number. Cancel-safe.
    async fn recv(&mut self) -> i32 {
        tokio::select! {
            Some(()) = self.int.recv() => Signal::SIGINT as i32,
            Some(()) = self.term.recv() => Signal::SIGTERM as i32,
        }
    }
}

fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cpus) if cpus.is_finite() && cpus > 0.0 => Ok(cpus),
        _ => Err(format!(
            "invalid cpu count {text:?}: expected a positive number like 0.5 or 2"
        )),
    }
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    Ok(Timeout {
        text: text.to_string(),
        duration: parse_duration(text)?,
    })
}

/// `host`, or a directory (made absolute against the current directory).
fn parse_rootfs(text: &str) -> Result<Rootfs, String> {
    if text == "host" {
        return Ok(Rootfs::Host);
    }
    Ok(Rootfs::Path {
        path: host_path(text)?,
    })
}

/// `HOST:SANDBOX[:ro|:rw]`; a relative host path is made absolute against the current
/// directory, the sandbox path must be absolute.
fn parse_mount(text: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let read_only = match parts.get(2).copied() {
        None => false,
        Some("ro") => true,
        Some("rw") => false,
        Some(other) => {
            return Err(format!(
                "invalid mount {text:?}: unknown option {other:?} (use ro)"
            ))
        }
    };
    let (host, sandbox) = match parts[..] {
        [host, sandbox] | [host, sandbox, _] if !host.is_empty() => (host, sandbox),
        _ => {
            return Err(format!(
                "invalid mount {text:?}: expected HOST:SANDBOX or HOST:SANDBOX:ro"
            ))
        }
    };
    let sandbox =
        parse_sandbox_path(sandbox).map_err(|e| format!("invalid mount {text:?}: {e}"))?;
    Ok(Mount {
        host: host_path(host)?,
        sandbox,
        read_only,
    })
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "invalid environment variable {text:?}: expected KEY=VALUE"
        )),
    }
}

fn parse_sandbox_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(format!("sandbox path {text:?} is not absolute"))
    }
}

fn host_path(text: &str) -> Result<String, String> {
    let path = std::path::absolute(PathBuf::from(text))
        .map_err(|e| format!("cannot make {text:?} absolute: {e}"))?;
    path.into_os_string().into_string().map_err(|p| {
        format!(
            "host path {} is not valid UTF-8",
            PathBuf::from(p).display()
        )
    })
}

#[cfg(test)]
mod tests {
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
        assert_eq!(args.memory, Some(64 << 20));
        assert_eq!(args.pids, Some(32));
        assert_eq!(args.cpus, Some(0.5));
        let timeout = args.timeout.unwrap();
        assert_eq!(
            (timeout.text.as_str(), timeout.duration),
            ("1.5s", Duration::from_millis(1500))
        );
        assert_eq!(args.workspace_size, Some(1 << 30));
        assert_eq!(
            args.rootfs,
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
            args.mounts,
            [mount("/a", "/b", true), mount("/c", "/d", false)]
        );
        assert_eq!(
            args.env,
            [("A".into(), "1=2".into()), ("B".into(), String::new())]
        );
        assert_eq!(args.cwd.as_deref(), Some("/d"));
        assert_eq!(args.hostname.as_deref(), Some("box"));
        assert_eq!(args.command, ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn command_without_separator_keeps_its_flags() {
        let args = parse(&["ls", "-la", "--memory", "1"]).unwrap();
        assert_eq!(args.command, ["ls", "-la", "--memory", "1"]);
        assert_eq!(args.memory, None);
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

    #[test]
    fn relative_host_paths_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let mount = parse_mount("proj:/workspace").unwrap();
        assert_eq!(PathBuf::from(&mount.host), cwd.join("proj"));
        assert_eq!(
            parse_rootfs("root").unwrap(),
            Rootfs::Path {
                path: cwd.join("root").to_str().unwrap().into()
            }
        );
        assert_eq!(parse_rootfs("host").unwrap(), Rootfs::Host);
    }
}
