//! `sandboxctl state`: a long-lived sandbox's OCI runtime state (`runc state`'s JSON).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::connect;

/// The annotation naming the bundle a sandbox came from.
pub const BUNDLE_ANNOTATION: &str = "io.sandboxd.bundle";

/// Flags of `sandboxctl state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
}

/// The runtime-spec `state` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OciState {
    oci_version: &'static str,
    id: String,
    /// `running` or `paused` (a sandbox that stopped is gone: `not_found`).
    status: String,
    /// Host pid of the sandbox's init.
    pid: u32,
    /// The bundle directory (`io.sandboxd.bundle`), empty when it came from no bundle.
    bundle: String,
    annotations: BTreeMap<String, String>,
}

/// Prints the state.
pub async fn execute(socket: &Path, args: StateArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let info = client
        .sandbox(&args.id)
        .inspect()
        .await
        .with_context(|| format!("inspecting {}", args.id))?;
    let mut annotations = info.annotations.clone();
    annotations.insert("io.sandboxd.policy".into(), info.policy.clone());
    let state = OciState {
        oci_version: "1.0.2",
        bundle: info
            .annotations
            .get(BUNDLE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        id: info.sandbox_id,
        status: info.state,
        pid: info.init_pid,
        annotations,
    };
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(0)
}
