//! `sandboxctl policy`: check a policy file, or show a policy with its defaults filled in.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::CLIENT_NAME;

/// Flags of `sandboxctl policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    verb: PolicyVerb,
}

#[derive(Debug, Subcommand)]
enum PolicyVerb {
    /// Check a policy file; prints every problem with its file, line and field
    Validate {
        /// The policy files
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the effective policy (every default filled in) the daemon knows as NAME
    Show {
        /// The policy [default: the daemon's default policy]
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// Without a daemon: read this policy directory (the shipped policies if it does not
        /// exist)
        #[arg(long, value_name = "DIR", default_value = "/etc/sandboxd/policies")]
        policy_dir: PathBuf,
    },
}

/// Runs the verb.
pub async fn execute(socket: &Path, args: PolicyArgs) -> anyhow::Result<i32> {
    match args.verb {
        PolicyVerb::Validate { files } => {
            let mut failed = false;
            for f in &files {
                match sandbox_policy::load(None, &path_arg(f)) {
                    Ok(p) => println!("{}: ok (policy {})", f.display(), p.name),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        PolicyVerb::Show { name, policy_dir } => {
            match agent_sdk::Client::connect_as(socket, CLIENT_NAME).await {
                Ok(client) => {
                    let (_, text) = client
                        .policy(name.as_deref())
                        .await
                        .context("asking the daemon for the policy")?;
                    print!("{text}");
                }
                Err(e) if e.is_no_daemon() => {
                    let name = name.unwrap_or_else(|| "default".into());
                    eprintln!(
                        "sandboxctl: no daemon at {}; showing {name} from {} (or the shipped policies)",
                        socket.display(),
                        policy_dir.display()
                    );
                    let p = sandbox_policy::load(Some(&policy_dir), &name)?;
                    print!("{}", p.to_toml());
                }
                Err(e) => return Err(e.into()),
            }
            Ok(0)
        }
    }
}

/// A file argument as `load` takes paths: with a `/` in it.
fn path_arg(f: &Path) -> String {
    let s = f.to_string_lossy().into_owned();
    if s.contains('/') {
        s
    } else {
        format!("./{s}")
    }
}
