//! `sandboxctl rm`: destroys sandboxes; without `-f`, one with a running exec is left alone.

use std::path::Path;

use agent_sdk::Sandbox;
use anyhow::bail;
use clap::Args;

use super::connect;

/// Flags of `sandboxctl rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Destroy even a sandbox whose execs are still running
    #[arg(short, long)]
    force: bool,
    /// The sandboxes
    #[arg(value_name = "ID", required = true)]
    ids: Vec<String>,
}

/// Destroys each sandbox, printing its id; goes on past failures and reports them in the exit
/// code (1).
pub async fn execute(socket: &Path, args: RmArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let mut code = 0;
    for id in &args.ids {
        match remove(&client.sandbox(id), args.force).await {
            Ok(()) => println!("{id}"),
            Err(err) => {
                eprintln!("sandboxctl: {id}: {err:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn remove(sandbox: &Sandbox, force: bool) -> anyhow::Result<()> {
    if !force {
        let info = sandbox.inspect().await?;
        let running = info.execs.iter().filter(|e| e.exit.is_none()).count();
        if running > 0 {
            bail!("{running} exec(s) still running; stop them first or use rm -f");
        }
    }
    Ok(sandbox.destroy().await?)
}
