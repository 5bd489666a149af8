//! `sandboxctl kill`: sends a signal to one exec of a sandbox (its process group), or to every
//! process of the sandbox.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use clap::Args;
use nix::sys::signal::Signal;

use super::connect;

/// The highest signal number the daemon passes on (it ignores the real-time ones).
const MAX_SIGNAL: i32 = 31;

/// Flags of `sandboxctl kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a number or a name (TERM, SIGKILL, int...)
    #[arg(short, long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal)]
    signal: i32,
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
    /// The exec; without it, every process of the sandbox
    #[arg(value_name = "EXEC_ID")]
    exec_id: Option<u64>,
}

/// Sends the signal.
pub async fn execute(socket: &Path, args: KillArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    client
        .sandbox(&args.id)
        .signal(args.exec_id, args.signal)
        .await
        .with_context(|| format!("signalling {}", args.id))?;
    Ok(0)
}

/// `9`, `KILL`, `SIGKILL` or `kill`.
fn parse_signal(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return match n {
            1..=MAX_SIGNAL => Ok(n),
            _ => Err(format!(
                "invalid signal {text:?}: numbers go from 1 to {MAX_SIGNAL}"
            )),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| format!("invalid signal {text:?}: expected a number or a name like TERM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        for (text, n) in [
            ("9", 9),
            ("KILL", 9),
            ("sigterm", 15),
            ("int", 2),
            ("SIGHUP", 1),
        ] {
            assert_eq!(parse_signal(text), Ok(n), "{text}");
        }
        assert_eq!(parse_signal("31"), Ok(31));
        for bad in ["0", "-1", "32", "NOPE", "SIG", "SIGRTMIN", ""] {
            assert!(parse_signal(bad).is_err(), "{bad:?}");
        }
    }
}
