//! `export_bundle` and `policy`: a sandbox's OCI form for runc or crun, and a policy with its
//! defaults filled in. Neither creates anything.

use sandbox_proto::{BundleEntry, ErrorCode, RunSpec};

use crate::isolation::mounts::HostEntry;
use crate::oci::{self, HostFacts};
use crate::policy::{self, Allocation, Caller, RootPlan};
use crate::sandbox::live::Failure;
use crate::sandbox::run::{check_paths, RunContext};

/// The bundle's `config.json` (pretty JSON) and the entries of its `rootfs` directory (for a
/// host root; empty for a rootfs directory, which `root.path` names).
pub async fn export_bundle(
    ctx: &RunContext,
    caller: &Caller,
    spec: RunSpec,
) -> Result<(String, Vec<BundleEntry>), Failure> {
    let pol = ctx.policy_for(caller, spec.policy.as_ref())?;
    // The export range: one slot past the daemon's own, so a bundle run by runc never shares
    // host ids with a sandbox of ours.
    let alloc = Allocation {
        sandbox_id: crate::sandbox::random_id(),
        slot: ctx.cfg.max_sandboxes,
    };
    let mut plan = policy::plan(&spec, &pol, caller, &ctx.cfg, &alloc)?;
    // Outside our cgroup parent, which the daemon sweeps at start.
    plan.cgroup = format!("{}-bundles/{}", ctx.cfg.cgroup_parent, alloc.sandbox_id);
    check_paths(caller, &mut plan)?;
    tokio::task::spawn_blocking(move || {
        let host = HostFacts::read(&plan)
            .map_err(|e| Failure::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let (root_path, entries) = match &plan.rootfs {
            RootPlan::Host => {
                let binds: Vec<&str> = plan.mounts.iter().map(|m| m.sandbox.as_str()).collect();
                ("rootfs".to_owned(), skeleton(&host.host_root, &binds))
            }
            RootPlan::Path(p) => (p.clone(), Vec::new()),
        };
        let spec = oci::spec_for(&plan, &root_path, &host).map_err(|e| {
            Failure::internal("rendering the OCI spec", crate::isolation::ipc::chain(&e))
        })?;
        let config = serde_json::to_string_pretty(&spec)
            .map_err(|e| Failure::internal("encoding config.json", e))?;
        Ok((config, entries))
    })
    .await
    .map_err(|e| Failure::internal("rendering the OCI spec", e))?
}

/// The rootfs directory for a host root: every parent directory, a mount point per bind (an
/// empty directory or file) and the host's symlinks, plus the sandbox's own mount points and
/// those of its host folders (`binds`, absolute): a runtime cannot create them itself in a
/// directory it does not own inside the user namespace.
fn skeleton(host_root: &[HostEntry], binds: &[&str]) -> Vec<BundleEntry> {
    let mut out: Vec<BundleEntry> = Vec::new();
    let dir = |out: &mut Vec<BundleEntry>, path: &str| {
        if !out.iter().any(|e| e.path == path) {
            out.push(BundleEntry {
                path: path.to_owned(),
                kind: "dir".into(),
                target: None,
            });
        }
    };
    for own in ["proc", "dev", "tmp", "workspace", "etc"] {
        dir(&mut out, own);
    }
    let host_dirs: Vec<HostEntry> = binds
        .iter()
        .map(|b| HostEntry::Dir((*b).to_owned()))
        .collect();
    for e in host_root.iter().chain(&host_dirs) {
        let (path, kind, target) = match e {
            HostEntry::Dir(p) => (p, "dir", None),
            HostEntry::File(p) => (p, "file", None),
            HostEntry::Symlink(p, t) => (p, "symlink", Some(t.clone())),
        };
        let rel = path.trim_start_matches('/');
        let mut parent = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            dir(&mut out, &parent);
        }
        if kind == "dir" {
            dir(&mut out, rel);
        } else {
            out.push(BundleEntry {
                path: rel.to_owned(),
                kind: kind.into(),
                target,
            });
        }
    }
    out
}

/// The policy `name` (`None`: the default one), as TOML with every key written.
pub fn show_policy(ctx: &RunContext, name: Option<&str>) -> Result<(String, String), Failure> {
    let name = name.unwrap_or(&ctx.cfg.default_policy);
    if name.contains('/') {
        return Err(Failure::new(
            ErrorCode::InvalidArgument,
            format!("policy: {name:?} is not a policy name"),
        ));
    }
    let pol = crate::sandbox::run::load_named(&ctx.cfg, name)?;
    Ok((pol.name.clone(), pol.to_toml()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_has_parents_mount_points_and_links() {
        let entries = skeleton(
            &[
                HostEntry::Dir("/usr".into()),
                HostEntry::Symlink("/bin".into(), "usr/bin".into()),
                HostEntry::File("/etc/passwd".into()),
                HostEntry::Dir("/etc/ssl".into()),
            ],
            &["/src/a"],
        );
        let got: Vec<(&str, &str, Option<&str>)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind.as_str(), e.target.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("proc", "dir", None),
                ("dev", "dir", None),
                ("tmp", "dir", None),
                ("workspace", "dir", None),
                ("etc", "dir", None),
                ("usr", "dir", None),
                ("bin", "symlink", Some("usr/bin")),
                ("etc/passwd", "file", None),
                ("etc/ssl", "dir", None),
                ("src", "dir", None),
                ("src/a", "dir", None),
            ]
        );
    }
}
