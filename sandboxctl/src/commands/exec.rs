//! `sandboxctl exec`: runs a command in a long-lived sandbox, streams its output, optionally
//! forwards stdin (`-i`) or drives it from this terminal (`-t`), and exits with its status.

use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::connect;
use crate::flags::{parse_env, parse_sandbox_path};
use crate::stream::{forward_stdin, stream, Signals};
use crate::tty::{self, RawMode};
use crate::units::{format_millis, parse_duration};

/// The terminal size sent when ours cannot be read.
const DEFAULT_SIZE: (u16, u16) = (24, 80);

/// Flags of `sandboxctl exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Forward stdin to the command
    #[arg(short, long)]
    interactive: bool,
    /// Run the command on a terminal: raw mode here, keys (Ctrl-C too) and window size sent on
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable (repeatable)
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Working directory in the sandbox [default: /workspace]
    #[arg(long, value_name = "DIR", value_parser = parse_sandbox_path)]
    cwd: Option<String>,
    /// User (and group; default the same number) inside the sandbox [default: 0]
    #[arg(long, value_name = "UID[:GID]", value_parser = parse_user)]
    user: Option<(u32, u32)>,
    /// Kill the command after this long (500ms, 30s, 2m, 1h)
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
    /// The command and its arguments
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, num_args = 1..)]
    command: Vec<String>,
}

/// Runs the command and returns the exit code sandboxctl should end with.
pub async fn execute(socket: &Path, args: ExecArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let sandbox = client.sandbox(&args.id);
    let mut b = sandbox.exec(args.command.iter().cloned());
    for (key, value) in &args.env {
        b = b.env(key, value);
    }
    if let Some(dir) = &args.cwd {
        b = b.cwd(dir.clone());
    }
    if let Some((uid, gid)) = args.user {
        b = b.user(uid, gid);
    }
    if let Some(timeout) = args.timeout {
        b = b.timeout(timeout);
    }
    if args.tty {
        let (rows, cols) = tty::size().unwrap_or(DEFAULT_SIZE);
        b = b.tty(rows, cols);
    } else {
        b = b.stdin(args.interactive);
    }
    let mut signals = Signals::new(args.tty)?;
    let mut run = b.start().await?;
    // Raw from here until this function returns, whichever way it does.
    let raw = if args.tty { RawMode::enter()? } else { None };
    if args.tty || args.interactive {
        forward_stdin(run.stdin_handle());
    }
    let status = stream(&mut run, &mut signals).await?;
    drop(raw);
    if status.timed_out {
        let ms = args.timeout.map_or(status.duration_ms, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
        });
        eprintln!("sandbox: timed out after {}", format_millis(ms));
    } else if status.oom_killed {
        eprintln!("sandbox: killed: out of memory");
    }
    Ok(status.shell_code())
}

/// `UID` or `UID:GID`, each below 65536.
fn parse_user(text: &str) -> Result<(u32, u32), String> {
    let id = |part: &str| match part.parse::<u32>() {
        Ok(n) if n < 65536 => Ok(n),
        _ => Err(format!(
            "invalid user {text:?}: expected UID or UID:GID, numbers below 65536"
        )),
    };
    match text.split_once(':') {
        Some((uid, gid)) => Ok((id(uid)?, id(gid)?)),
        None => id(text).map(|uid| (uid, uid)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn parse(argv: &[&str]) -> Result<ExecArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("exec").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_id_and_command() {
        let a = parse(&[
            "-it",
            "--env",
            "A=1",
            "--cwd",
            "/w",
            "--user",
            "1000:100",
            "--timeout",
            "2s",
            "sb-1",
            "--",
            "sh",
            "-c",
            "ls -l",
        ])
        .unwrap();
        assert!(a.interactive && a.tty);
        assert_eq!(a.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(a.cwd.as_deref(), Some("/w"));
        assert_eq!(a.user, Some((1000, 100)));
        assert_eq!(a.timeout, Some(Duration::from_secs(2)));
        assert_eq!(a.id, "sb-1");
        assert_eq!(a.command, ["sh", "-c", "ls -l"]);

        let a = parse(&["sb-2", "ls", "-la", "--tty"]).unwrap();
        assert!(!a.tty, "flags after the command are the command's");
        assert_eq!(a.command, ["ls", "-la", "--tty"]);
        assert!(parse(&["sb-1"]).is_err());
    }

    #[test]
    fn users() {
        assert_eq!(parse_user("1000"), Ok((1000, 1000)));
        assert_eq!(parse_user("0:5"), Ok((0, 5)));
        for bad in ["", "x", "1:", ":1", "65536", "1:2:3", "-1"] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
