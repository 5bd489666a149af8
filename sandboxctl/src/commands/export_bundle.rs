//! `sandboxctl export-bundle`: writes the OCI bundle of a sandbox (the daemon renders it from
//! the policy and flags), which `runc run` and `crun run` execute with the same isolation.

use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::connect;
use crate::flags::SandboxFlags;

/// Flags of `sandboxctl export-bundle`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    sandbox: SandboxFlags,
    /// Replace an existing config.json
    #[arg(long)]
    force: bool,
    /// The bundle directory (created if missing)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The bundle's command [default: sh]
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    command: Vec<String>,
}

/// Writes `DIR/config.json`, and for a host root `DIR/rootfs` with its mount points.
pub async fn execute(socket: &Path, args: ExportArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let argv = if args.command.is_empty() {
        vec!["sh".to_owned()]
    } else {
        args.command.clone()
    };
    let spec = args.sandbox.apply(client.run(argv))?.spec().clone();
    let (config, rootfs) = client
        .export_bundle(spec)
        .await
        .context("rendering the bundle")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let config_path = args.dir.join("config.json");
    if config_path.exists() && !args.force {
        bail!(
            "{} exists (use --force to replace it)",
            config_path.display()
        );
    }
    if !rootfs.is_empty() {
        let root = args.dir.join("rootfs");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        for e in &rootfs {
            let rel = Path::new(&e.path);
            // The daemon's answer must stay inside the bundle.
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                bail!(
                    "the daemon named a rootfs entry outside the bundle: {}",
                    e.path
                );
            }
            let path = root.join(rel);
            let made = match (e.kind.as_str(), &e.target) {
                ("dir", _) => std::fs::create_dir_all(&path),
                ("file", _) => std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map(drop),
                ("symlink", Some(t)) => match std::fs::symlink_metadata(&path) {
                    Ok(_) => Ok(()),
                    Err(_) => symlink(t, &path),
                },
                _ => bail!("unknown rootfs entry kind {:?} for {}", e.kind, e.path),
            };
            made.with_context(|| format!("creating {}", path.display()))?;
        }
    }
    std::fs::write(&config_path, config.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!("{}", config_path.display());
    Ok(0)
}
