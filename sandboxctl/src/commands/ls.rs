//! `sandboxctl ls`: the caller's long-lived sandboxes (root: everyone's), as a table or JSON.

use std::path::Path;

use agent_sdk::SandboxInfo;
use clap::Args;

use super::connect;
use crate::table;
use crate::units::{format_age, format_size, now_unix_ms};

/// Flags of `sandboxctl ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print the daemon's full answer as JSON instead of a table
    #[arg(long)]
    json: bool,
}

/// Lists the sandboxes.
pub async fn execute(socket: &Path, args: LsArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let sandboxes = client.list().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sandboxes)?);
    } else {
        print!("{}", render(&sandboxes, now_unix_ms()));
    }
    Ok(0)
}

/// One row per sandbox: EXECS counts the running ones, MEMORY is the limit.
fn render(sandboxes: &[SandboxInfo], now_ms: u64) -> String {
    let mut rows = vec![["ID", "STATE", "OWNER", "AGE", "EXECS", "MEMORY"].map(String::from)];
    for sb in sandboxes {
        let running = sb.execs.iter().filter(|e| e.exit.is_none()).count();
        rows.push([
            sb.sandbox_id.clone(),
            sb.state.clone(),
            sb.owner_uid.to_string(),
            format_age(now_ms.saturating_sub(sb.created_unix_ms)),
            running.to_string(),
            sb.limits.memory.map_or_else(|| "-".into(), format_size),
        ]);
    }
    table::render(&rows)
}

#[cfg(test)]
mod tests {
    use agent_sdk::{ExecInfo, ExitStatus, Limits};

    use super::*;

    #[test]
    fn renders_a_table() {
        let sb = |id: &str, state: &str, age_ms: u64, memory| SandboxInfo {
            sandbox_id: id.into(),
            state: state.into(),
            owner_uid: 1000,
            created_unix_ms: 1_000_000_000 - age_ms,
            limits: Limits {
                memory,
                ..Limits::default()
            },
            ..SandboxInfo::default()
        };
        let mut busy = sb("sb-1", "running", 5_000, Some(256 << 20));
        busy.execs = vec![
            ExecInfo::default(),
            ExecInfo {
                exit: Some(ExitStatus::default()),
                ..ExecInfo::default()
            },
        ];
        let list = [busy, sb("sb-22", "paused", 3 * 3_600_000, None)];
        let want = "\
ID     STATE    OWNER  AGE  EXECS  MEMORY
sb-1   running  1000   5s   1      256 MiB
sb-22  paused   1000   3h   0      -
";
        assert_eq!(render(&list, 1_000_000_000), want);
        assert_eq!(render(&[], 0), "ID  STATE  OWNER  AGE  EXECS  MEMORY\n");
    }
}
