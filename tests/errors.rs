//! Every broken pipeline under tests/errors/ fails before anything runs, with a message that
//! names the file, line:column and stage, and a hint. The messages are snapshots.

use std::path::Path;
use std::process::Command;

#[test]
fn broken_pipelines_fail_with_located_messages_and_touch_no_cache() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors");
    insta::glob!("errors/*.yaml", |path| {
        let cache = tempfile::tempdir().unwrap();
        let cache_dir = cache.path().join("cache");
        let file = path.file_name().unwrap().to_str().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["run", file, "--cache-dir"])
            .arg(&cache_dir)
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{file} was accepted");
        assert!(!cache_dir.exists(), "{file}: the cache was touched");
        assert!(
            stderr.contains(&format!("--> {file}")),
            "{file}: no location in\n{stderr}"
        );
        insta::assert_snapshot!(stderr);
    });
}
