//! Any valid policy, planned with an empty request, renders to a spec that oci-spec's builders
//! accept and that survives its own `config.json` round trip unchanged.

use clap::Parser;
use proptest::prelude::*;
use sandbox_policy::testing::arb_policy;
use sandbox_proto::RunSpec;

use super::*;
use crate::config::Config;
use crate::policy::{self, Allocation, Caller};

fn facts(plan: &Plan) -> HostFacts {
    HostFacts {
        devices: plan
            .devices
            .iter()
            .enumerate()
            .map(|(i, path)| DeviceNode {
                path: path.clone(),
                char: true,
                major: 10,
                minor: i as i64,
                mode: 0o666,
            })
            .collect(),
        host_root: vec![
            HostEntry::Dir("/usr".into()),
            HostEntry::Symlink("/bin".into(), "usr/bin".into()),
            HostEntry::File("/etc/passwd".into()),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_valid_policy_renders_to_a_valid_spec(pol in arb_policy()) {
        let cfg = Config::parse_from(["sandboxd", "--state-dir", "/s"]);
        let caller = Caller { uid: 0, gid: 0, pid: 1 };
        let alloc = Allocation { sandbox_id: "0123456789ab".into(), slot: 0 };
        let spec = RunSpec { argv: vec!["true".into()], ..RunSpec::default() };
        let mut plan = match policy::plan(&spec, &pol, &caller, &cfg, &alloc) {
            Ok(p) => p,
            // Only the network modes not built yet are refused for a valid policy.
            Err(policy::PolicyError::Bound { field, .. }) if field == "network" => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        // A profile given by path is a file on the host; the embedded ones stand in for it.
        if plan.seccomp.starts_with('/') {
            plan.seccomp = "browser".into();
        }
        let rendered = spec_for(&plan, "rootfs", &facts(&plan))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let text = serde_json::to_string(&rendered).unwrap();
        let back: Spec = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&back, &rendered);
        let linux = rendered.linux().as_ref().unwrap();
        prop_assert_eq!(rendered.root().as_ref().unwrap().readonly(),
            Some(plan.fs_mode != sandbox_proto::FsMode::Full));
        let caps = rendered.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        prop_assert_eq!(caps.bounding().as_ref().map(|c| c.len()), Some(plan.capabilities.len()));
        prop_assert_eq!(
            linux.devices().as_ref().map(|d| d.len()).unwrap_or(0),
            plan.devices.len()
        );
        let mem = linux.resources().as_ref().unwrap().memory().as_ref().unwrap();
        prop_assert_eq!(mem.limit(), Some(plan.limits.memory.unwrap() as i64));
        prop_assert_eq!(mem.swap(), Some((plan.limits.memory.unwrap() + plan.limits.swap) as i64));
    }
}
