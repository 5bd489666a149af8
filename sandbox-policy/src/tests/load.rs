use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{available, load, LoadError};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sandbox-policy-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn shipped_when_no_directory() {
    let missing = std::env::temp_dir().join("sandbox-policy-test-does-not-exist");
    for dir in [None, Some(missing.as_path())] {
        assert_eq!(load(dir, "strict").unwrap().name, "strict");
        assert_eq!(
            available(dir),
            ["browser", "ci", "default", "network-allowlist", "strict"]
        );
        assert_eq!(
            load(dir, "nope").unwrap_err().to_string(),
            "no policy \"nope\" among the shipped policies (available: browser, ci, default, network-allowlist, strict)"
        );
    }
}

#[test]
fn directory_only_when_it_exists() {
    let tmp = TempDir::new();
    std::fs::write(tmp.0.join("mine.toml"), "[limits]\npids = 10\n").unwrap();
    std::fs::write(tmp.0.join("bad.toml"), "[limits]\npids = 1\n").unwrap();
    std::fs::write(tmp.0.join("Not-A-Name.toml"), "").unwrap();
    std::fs::write(tmp.0.join("notes.txt"), "").unwrap();
    let dir = Some(tmp.0.as_path());
    assert_eq!(available(dir), ["bad", "mine"]);
    let p = load(dir, "mine").unwrap();
    assert_eq!((p.name.as_str(), p.limits.pids), ("mine", 10));
    // A shipped name is not looked up once the directory exists.
    assert_eq!(
        load(dir, "default").unwrap_err().to_string(),
        format!(
            "no policy \"default\" in {} (available: bad, mine)",
            tmp.0.display()
        )
    );
    let e = load(dir, "bad").unwrap_err();
    assert!(matches!(e, LoadError::Policy(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}/bad.toml:2:8: limits.pids: 1 is below the minimum 2",
            tmp.0.display()
        )
    );
    let empty = TempDir::new();
    assert_eq!(
        load(Some(&empty.0), "x").unwrap_err().to_string(),
        format!("no policy \"x\" in {} (available: none)", empty.0.display())
    );
}

#[test]
fn paths_and_names() {
    let tmp = TempDir::new();
    let file = tmp.0.join("my-policy.toml");
    std::fs::write(&file, "description = \"mine\"\n").unwrap();
    let p = load(None, file.to_str().unwrap()).unwrap();
    assert_eq!(
        (p.name.as_str(), p.description.as_str()),
        ("my-policy", "mine")
    );

    let missing = tmp.0.join("missing.toml");
    let e = load(None, missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{e}"
    );

    for bad in ["", "Default", "-x", "a.b", "a b", "..", &"a".repeat(65)] {
        assert!(
            matches!(load(None, bad), Err(LoadError::BadName { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(
        load(None, "A").unwrap_err().to_string(),
        "\"A\" is not a policy name (a-z, 0-9, _ and -, starting with a letter or digit, at most 64 characters)"
    );
    for good in ["a", "0", "a_b-c", &"a".repeat(64)] {
        assert!(crate::is_policy_name(good), "{good:?}");
    }
}
