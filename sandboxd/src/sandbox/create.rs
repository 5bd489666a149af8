//! `create`: a sandbox that outlives the request, for execs and file calls until it is
//! destroyed or expires.

use std::sync::Arc;

use sandbox_proto::{CreateSpec, ErrorCode, SandboxInfo};
use tracing::info;

use crate::policy::{self, Caller};
use crate::sandbox::kept::{self, Parts};
use crate::sandbox::live::{Failure, LiveSandbox};
use crate::sandbox::run::{prepare_plan, RunContext};
use crate::sandbox::RegistryError;

/// Creates a sandbox for `caller` and keeps it.
pub async fn create(
    ctx: &RunContext,
    caller: Caller,
    spec: CreateSpec,
) -> Result<SandboxInfo, Failure> {
    if caller.uid != 0 && ctx.kept.count_of(caller.uid) >= ctx.cfg.max_sandboxes_per_uid {
        let msg = format!(
            "uid {} already has {} sandboxes",
            caller.uid, ctx.cfg.max_sandboxes_per_uid
        );
        return Err(Failure::new(ErrorCode::ResourceExhausted, msg));
    }
    let alloc = ctx
        .registry
        .allocate(caller.uid, &ctx.cfg.cgroup_parent)
        .map_err(|e| match e {
            RegistryError::Full(_) => Failure::new(ErrorCode::ResourceExhausted, e.to_string()),
            RegistryError::ShuttingDown => Failure::new(ErrorCode::ShuttingDown, e.to_string()),
        })?;
    let made = async {
        let pol = ctx.policy_for(&caller, spec.policy.as_ref())?;
        let plan = policy::plan_create(&spec, &pol, &caller, &ctx.cfg, &alloc)?;
        let (plan, cgroup) = prepare_plan(ctx, &caller, plan, &alloc).await?;
        match LiveSandbox::start(&plan, &ctx.init).await {
            Ok(live) => Ok((plan, cgroup, live)),
            Err(f) => {
                let _ = tokio::task::spawn_blocking(move || cgroup.destroy()).await;
                Err(f)
            }
        }
    }
    .await;
    let (plan, cgroup, live) = match made {
        Ok(m) => m,
        Err(f) => {
            ctx.registry.release(&alloc);
            return Err(f);
        }
    };
    ctx.registry.set_init_pid(
        &alloc.sandbox_id,
        u32::try_from(live.0.init_pid).unwrap_or(0),
    );
    let parts = Parts {
        owner: caller,
        alloc,
        plan,
        spec,
        live,
        cgroup,
    };
    let kept = kept::adopt(
        &ctx.kept,
        &ctx.registry,
        &ctx.store,
        &ctx.cfg.exec_log_dir(),
        parts,
    )
    .map_err(|e| Failure::new(ErrorCode::Internal, crate::isolation::ipc::chain(&e)))?;
    info!(sandbox = %kept.id, "created");
    Ok(kept.info())
}

/// `destroy`: kills everything in the sandbox and waits until all it had is released.
pub async fn destroy(ctx: &RunContext, caller: &Caller, sandbox_id: &str) -> Result<(), Failure> {
    let kept = ctx
        .kept
        .get(caller, sandbox_id)
        .ok_or_else(|| not_found(sandbox_id))?;
    kept.live.kill().await;
    kept.wait_gone().await;
    Ok(())
}

/// The error for a sandbox that does not exist or is not the caller's.
pub fn not_found(sandbox_id: &str) -> Failure {
    Failure::new(ErrorCode::NotFound, format!("no sandbox {sandbox_id}"))
}

/// Kills every kept sandbox (daemon shutdown).
pub async fn kill_all(table: &Arc<kept::KeptTable>) {
    for k in table.all() {
        k.terminate().await;
    }
}
