//! `sandboxctl pause`: freezes every process of a sandbox.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use super::connect;

/// Flags of `sandboxctl pause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
}

/// Pauses the sandbox.
pub async fn execute(socket: &Path, args: PauseArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    client
        .sandbox(&args.id)
        .pause()
        .await
        .with_context(|| format!("pausing {}", args.id))?;
    Ok(0)
}
