//! `sandboxctl cp`: copies a file or a directory (recursively) between the host and a sandbox.
//! Exactly one side is `ID:/path`. As with `cp -r`, a destination that is an existing
//! directory receives the source under its own name.

use std::path::{Path, PathBuf};

use agent_sdk::{FileKind, Sandbox, Transfer};
use anyhow::{bail, Context};
use clap::Args;

use super::connect;

/// Flags of `sandboxctl cp`.
#[derive(Debug, Args)]
#[command(
    after_help = "One of SRC and DST is ID:/path (a sandbox path, absolute), the other a \
                        host path; write ./a:b for a host file named a:b. Host symlinks inside \
                        an uploaded directory are skipped (with a warning); sandbox symlinks \
                        are recreated as symlinks, never followed. Entries that cannot be \
                        copied are reported and the copy goes on; the exit status is then 1."
)]
pub struct CpArgs {
    /// What to copy: a host path or ID:/path
    #[arg(value_name = "SRC")]
    src: String,
    /// Where to copy it: a host path or ID:/path
    #[arg(value_name = "DST")]
    dst: String,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Host(PathBuf),
    Sandbox { id: String, path: String },
}

/// Copies SRC to DST.
pub async fn execute(socket: &Path, args: CpArgs) -> anyhow::Result<i32> {
    let (src, dst) = (parse_side(&args.src)?, parse_side(&args.dst)?);
    let transfer = match (src, dst) {
        (Side::Host(host), Side::Sandbox { id, path }) => {
            let client = connect(socket).await?;
            upload(&client.sandbox(id), &host, &path).await?
        }
        (Side::Sandbox { id, path }, Side::Host(host)) => {
            let client = connect(socket).await?;
            download(&client.sandbox(id), &path, &host).await?
        }
        _ => bail!("exactly one of SRC and DST must be a sandbox path (ID:/path)"),
    };
    for skipped in &transfer.skipped {
        eprintln!("sandboxctl: skipped {}: {}", skipped.path, skipped.reason);
    }
    for failed in &transfer.failed {
        eprintln!("sandboxctl: {}: {}", failed.path, failed.reason);
    }
    // As `cp -r`: what could be copied was; a failed entry still makes the copy fail.
    Ok(if transfer.failed.is_empty() { 0 } else { 1 })
}

/// `ID:/path` is a sandbox path when ID is not empty and has no `/`; anything else is a host
/// path.
fn parse_side(text: &str) -> anyhow::Result<Side> {
    match text.split_once(':') {
        Some((id, path)) if !id.is_empty() && !id.contains('/') => {
            if !path.starts_with('/') {
                bail!("sandbox path {path:?} in {text:?} is not absolute");
            }
            Ok(Side::Sandbox {
                id: id.to_owned(),
                path: path.to_owned(),
            })
        }
        _ if text.is_empty() => bail!("empty path"),
        _ => Ok(Side::Host(PathBuf::from(text))),
    }
}

async fn upload(sandbox: &Sandbox, host: &Path, path: &str) -> anyhow::Result<Transfer> {
    let meta = std::fs::metadata(host).with_context(|| format!("reading {}", host.display()))?;
    let target = match sandbox.stat(path).await {
        Ok(stat) if stat.kind == FileKind::Dir => {
            let name = host
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} has no UTF-8 file name", host.display()))?;
            format!("{}/{name}", path.trim_end_matches('/'))
        }
        Ok(_) => path.to_owned(),
        Err(err) if err.is_not_found() => path.to_owned(),
        Err(err) => return Err(err).with_context(|| format!("looking at {path}")),
    };
    if meta.is_dir() {
        Ok(sandbox.upload_dir(host, &target).await?)
    } else {
        let bytes = sandbox.upload_file(host, &target).await?;
        Ok(Transfer {
            files: 1,
            bytes,
            ..Transfer::default()
        })
    }
}

async fn download(sandbox: &Sandbox, path: &str, host: &Path) -> anyhow::Result<Transfer> {
    let stat = sandbox
        .stat(path)
        .await
        .with_context(|| format!("looking at {path}"))?;
    let is_dir = match stat.kind {
        FileKind::Dir => true,
        FileKind::File => false,
        // A named symlink is followed (inside the sandbox): to a directory if it lists.
        FileKind::Symlink => sandbox.list(path).await.is_ok(),
        FileKind::Other => bail!("{path} is not a regular file, directory or symlink"),
    };
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let target = if host.is_dir() && !name.is_empty() {
        host.join(name)
    } else {
        host.to_path_buf()
    };
    if is_dir {
        Ok(sandbox.download_dir(path, &target).await?)
    } else {
        let bytes = sandbox.download_file(path, &target).await?;
        Ok(Transfer {
            files: 1,
            bytes,
            ..Transfer::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        let sb = |id: &str, path: &str| Side::Sandbox {
            id: id.into(),
            path: path.into(),
        };
        assert_eq!(parse_side("sb-1:/w/a").unwrap(), sb("sb-1", "/w/a"));
        assert_eq!(parse_side("sb-1:/").unwrap(), sb("sb-1", "/"));
        assert_eq!(parse_side("./a:b").unwrap(), Side::Host("./a:b".into()));
        assert_eq!(parse_side("/x/y").unwrap(), Side::Host("/x/y".into()));
        assert_eq!(parse_side(":x").unwrap(), Side::Host(":x".into()));
        assert!(parse_side("sb-1:rel").is_err());
        assert!(parse_side("").is_err());
    }
}
