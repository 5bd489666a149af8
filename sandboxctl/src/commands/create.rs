//! `sandboxctl create`: creates a long-lived sandbox and prints its id.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::connect;
use crate::flags::SandboxFlags;
use crate::units::parse_duration;

/// Flags of `sandboxctl create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    sandbox: SandboxFlags,
    /// Destroy the sandbox this long after its creation (500ms, 30s, 2m, 1h)
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Destroy the sandbox after this long unused while no exec runs
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
}

/// Creates the sandbox and prints its id.
pub async fn execute(socket: &Path, args: CreateArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let mut b = args.sandbox.apply(client.create())?;
    if let Some(ttl) = args.ttl {
        b = b.ttl(ttl);
    }
    if let Some(idle) = args.idle_timeout {
        b = b.idle_timeout(idle);
    }
    let sandbox = b.create().await.context("creating the sandbox")?;
    println!("{}", sandbox.id());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "create",
            "--memory",
            "256M",
            "--ttl",
            "1h",
            "--idle-timeout",
            "90s",
            "--env",
            "A=1",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.sandbox.memory, Some(256 << 20));
        assert_eq!(a.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(a.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(a.sandbox.env, [("A".to_string(), "1".to_string())]);
        // No command, and none of run's per-command flags.
        assert!(Cli::try_parse_from(["create", "true"]).is_err());
        assert!(Cli::try_parse_from(["create", "--cwd", "/w"]).is_err());
    }
}
