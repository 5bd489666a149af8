//! Runs a small Node.js project from a host folder in a sandbox and streams its output live.
//!
//! ```text
//! SANDBOXD_SOCKET=/run/sandboxd/sandboxd.sock cargo run -p agent-sdk --example node_project
//! ```

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use agent_sdk::{Client, Event, SandboxBuilder};

const INDEX_JS: &str = r#"let n = 0;
const timer = setInterval(() => {
  n += 1;
  console.log(`tick ${n} from ${require("os").hostname()}`);
  if (n === 3) console.error("halfway there");
  if (n === 5) clearInterval(timer);
}, 300);
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let project = std::env::temp_dir().join(format!("agent-sdk-node-{}", std::process::id()));
    std::fs::create_dir_all(&project)?;
    let result = run_project(&project).await;
    let _ = std::fs::remove_dir_all(&project);
    result
}

async fn run_project(project: &std::path::Path) -> Result<(), Box<dyn Error>> {
    std::fs::write(project.join("index.js"), INDEX_JS)?;
    let socket = std::env::var("SANDBOXD_SOCKET")
        .unwrap_or_else(|_| "/run/sandboxd/sandboxd.sock".to_string());
    let client = Client::connect(&socket).await?;
    println!("connected to {}", client.daemon());

    let host = project
        .to_str()
        .ok_or("the temp folder's path is not UTF-8")?;
    let mut run = client
        .run(["node", "index.js"])
        .mount(host, "/workspace", false)
        .cwd("/workspace")
        .memory(256 << 20)
        .timeout(Duration::from_secs(30))
        .start()
        .await?;
    println!("started sandbox {}", run.sandbox_id());

    while let Some(event) = run.next_event().await {
        match event {
            Event::Stdout(data) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&data)?;
                out.flush()?;
            }
            Event::Stderr(data) => {
                let mut err = std::io::stderr().lock();
                err.write_all(&data)?;
                err.flush()?;
            }
            Event::Exit(status) => {
                println!("exited: {status:?} (shell code {})", status.shell_code());
            }
            Event::Error(err) => return Err(err.into()),
        }
    }
    Ok(())
}
