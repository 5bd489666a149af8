//! `sandboxctl inspect`: one sandbox in detail, as the daemon describes it, in JSON.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use super::connect;

/// Flags of `sandboxctl inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
}

/// Prints the sandbox's description.
pub async fn execute(socket: &Path, args: InspectArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let info = client
        .sandbox(&args.id)
        .inspect()
        .await
        .with_context(|| format!("inspecting {}", args.id))?;
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(0)
}
