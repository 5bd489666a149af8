//! `sandboxctl resume`: thaws a paused sandbox.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use super::connect;

/// Flags of `sandboxctl resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
}

/// Resumes the sandbox.
pub async fn execute(socket: &Path, args: ResumeArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    client
        .sandbox(&args.id)
        .resume()
        .await
        .with_context(|| format!("resuming {}", args.id))?;
    Ok(0)
}
