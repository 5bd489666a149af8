//! Builds `sandbox-init` as a static executable and hands its path to the sandboxd crate,
//! which embeds it (`include_bytes!`) and runs it from a sealed memfd as pid 1 of every
//! sandbox. Static, so it runs in any root filesystem; embedded, so there is no path on the
//! host that a sandbox (or anyone) could replace it at.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .expect("sandboxd/ lives in the workspace")
        .to_path_buf();
    let target = std::env::var("TARGET").expect("TARGET");
    // A target dir of its own: the outer cargo holds the lock on the main one.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("sandbox-init-static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "sandbox-init",
            "--target",
            &target,
            "--target-dir",
        ])
        .arg(&target_dir)
        // Statically linked; the flags of the outer build (and clippy's wrapper) do not apply.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo to build sandbox-init");
    assert!(status.success(), "building sandbox-init (static) failed");
    let bin = target_dir
        .join(&target)
        .join("release")
        .join("sandbox-init");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("sandbox-init");
    std::fs::copy(&bin, &out).expect("copying sandbox-init");
    println!("cargo:rustc-env=SANDBOX_INIT_BIN={}", out.display());
    for p in [
        "sandbox-init/src",
        "sandbox-init/Cargo.toml",
        "sandbox-proto/src",
        "sandbox-proto/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
}
