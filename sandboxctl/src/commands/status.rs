//! `sandboxctl status`: prints the daemon's version, its cgroup hierarchy and one line per live
//! sandbox.

use std::path::Path;

use agent_sdk::{Client, DaemonStatus};

use super::CLIENT_NAME;
use crate::table;

/// Asks the daemon at `socket` for its state and prints it.
pub async fn execute(socket: &Path) -> anyhow::Result<i32> {
    let client = Client::connect_as(socket, CLIENT_NAME).await?;
    let status = client.status().await?;
    print!("{}", render(&status));
    Ok(0)
}

fn render(status: &DaemonStatus) -> String {
    let mut out = format!(
        "daemon:    {}\ncgroups:   {}\nsandboxes: {}\n",
        status.daemon,
        status.cgroup_version,
        status.sandboxes.len()
    );
    if status.sandboxes.is_empty() {
        return out;
    }
    let mut rows = vec![["SANDBOX", "OWNER", "UID-BASE", "PID", "CGROUP"].map(String::from)];
    for sb in &status.sandboxes {
        let pid = if sb.init_pid == 0 {
            "-".to_string()
        } else {
            sb.init_pid.to_string()
        };
        rows.push([
            sb.sandbox_id.clone(),
            sb.owner_uid.to_string(),
            sb.host_uid_base.to_string(),
            pid,
            sb.cgroup.clone(),
        ]);
    }
    out.push_str(&table::render(&rows));
    out
}

#[cfg(test)]
mod tests {
    use agent_sdk::SandboxSummary;

    use super::*;

    #[test]
    fn renders_one_line_per_sandbox() {
        let status = DaemonStatus {
            daemon: "sandboxd 0.1.0".into(),
            cgroup_version: "v2".into(),
            sandboxes: vec![
                SandboxSummary {
                    sandbox_id: "sb-1".into(),
                    owner_uid: 1000,
                    host_uid_base: 1_207_959_552,
                    cgroup: "sandboxd/sb-1".into(),
                    init_pid: 4242,
                },
                SandboxSummary {
                    sandbox_id: "sb-22".into(),
                    owner_uid: 0,
                    host_uid_base: 1_208_025_088,
                    cgroup: "sandboxd/sb-22".into(),
                    init_pid: 0,
                },
            ],
        };
        let want = "\
daemon:    sandboxd 0.1.0
cgroups:   v2
sandboxes: 2
SANDBOX  OWNER  UID-BASE    PID   CGROUP
sb-1     1000   1207959552  4242  sandboxd/sb-1
sb-22    0      1208025088  -     sandboxd/sb-22
";
        assert_eq!(render(&status), want);
    }

    #[test]
    fn renders_no_sandboxes() {
        let status = DaemonStatus {
            daemon: "d".into(),
            cgroup_version: "v1".into(),
            sandboxes: vec![],
        };
        assert_eq!(
            render(&status),
            "daemon:    d\ncgroups:   v1\nsandboxes: 0\n"
        );
    }
}
