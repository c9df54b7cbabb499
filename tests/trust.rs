//! A cached or verified result is never wrong: edited entries and manifests, objects changed
//! behind the stat cache's back, signals, closed pipes and manifest write failures (issue 9).
//! Each test names what broke before it was fixed.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Project, sorted};

/// src → mapped, and a scored source beside them.
const PIPELINE: &str = r#"
name: trust
stages:
  src:
    kind: test-source
    rows: 50
    file: input.txt
  mapped:
    kind: test-map
    inputs: [src]
    add: 1
  scored:
    kind: test-source
    rows: 5
    score: 0.8125
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.write("input.txt", "one\ntwo\nthree\n");
    p
}

/// Ages the input and every cached object by an hour, then lets `status` record them in the
/// stat cache: from now on it trusts their size + mtime + inode (a file hashed right after it
/// was written is never trusted, git's racy rule).
fn age_and_record(p: &Project) {
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in p.objects().into_iter().chain([p.path("input.txt")]) {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_modified(hour_ago).unwrap();
    }
    p.cairn(&["status", "pipeline.yaml"]).ok();
}

fn manifest(p: &Project) -> serde_yaml::Value {
    serde_yaml::from_str(&p.read("cache/manifests/trust.yaml")).expect("manifest")
}

fn fingerprint(p: &Project, stage: &str) -> String {
    manifest(p)["stages"][stage]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The object path of a stage's first output.
fn first_object(p: &Project, stage: &str) -> std::path::PathBuf {
    let m = manifest(p);
    let outputs = m["stages"][stage]["outputs"].as_mapping().unwrap();
    let digest = outputs.values().next().unwrap()["digest"].as_str().unwrap();
    p.path(&format!(
        "cache/v1/objects/{}/{}",
        &digest[..2],
        &digest[2..]
    ))
}

/// Rewrites a file in place with the same size and restores its mtime, as `rsync -t` or
/// `touch -r` can: the stat cache (size, mtime, inode) cannot see the change.
fn change_behind_stat_cache(path: &std::path::Path) {
    use std::io::Write;
    let meta = std::fs::metadata(path).unwrap();
    let mtime = meta.modified().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    (&file).write_all(&bytes).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(path).unwrap().len(), meta.len());
}

#[test]
fn an_edited_cache_entry_is_reported_removed_and_recomputed() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    let entry = p.path(&format!(
        "cache/v1/entries/{}.json",
        fingerprint(&p, "scored")
    ));
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("0.8125"), "{text}");
    std::fs::write(&entry, text.replace("0.8125", "0.9999")).unwrap();

    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("scored") && status.stdout.contains("cache entry"),
        "{}",
        status.stdout
    );
    let run = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(run.stderr.contains("cache entry corrupt"), "{}", run.stderr);
    assert_eq!(p.executions(), sorted(&["scored"]));
    assert_eq!(manifest(&p)["stages"]["scored"]["metrics"]["score"], 0.8125);
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(!text.contains("0.9999"), "{text}");
}

#[test]
fn verify_compares_metrics_and_catches_an_edited_manifest() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let good = p.cairn(&["verify", "pipeline.yaml"]).ok();
    assert!(good.stdout.contains("scored: identical"), "{}", good.stdout);

    let path = "cache/manifests/trust.yaml";
    p.write(path, &p.read(path).replace("0.8125", "0.9125"));
    let bad = p.cairn(&["verify", "pipeline.yaml"]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("scored: DIFFERENT") && bad.stdout.contains("metric score"),
        "{}",
        bad.stdout
    );
    assert!(bad.stdout.contains("src: identical"), "{}", bad.stdout);

    // status sees it, and a no-op run restores the record from the (sealed) cache entry.
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("differs from the cached result"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.read(path).contains("0.8125"));
}

#[test]
fn a_corrupt_upstream_object_found_by_its_consumer_recomputes_the_owner_in_the_same_run() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    age_and_record(&p);
    change_behind_stat_cache(&first_object(&p, "src"));
    // The stat cache is fooled: status still says fresh ...
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(!status.stdout.contains("corrupt"), "{}", status.stdout);
    // ... until the consumer reads the object and the owner is recomputed in the same run.
    let text = p.read("pipeline.yaml").replace("add: 1", "add: 2");
    p.write("pipeline.yaml", &text);
    let run = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(run.stderr.contains("recomputing src"), "{}", run.stderr);
    assert_eq!(p.executions(), sorted(&["mapped", "src"]));
    let object = first_object(&p, "src");
    let digest = blake3::hash(&std::fs::read(&object).unwrap());
    assert_eq!(
        object.file_name().unwrap().to_str().unwrap(),
        &digest.to_hex()[2..]
    );
}

#[test]
fn rehash_sees_files_and_objects_changed_with_their_mtime_restored() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    age_and_record(&p);
    change_behind_stat_cache(&p.path("input.txt"));
    change_behind_stat_cache(&first_object(&p, "scored"));
    let fooled = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(!fooled.stdout.contains("stale"), "{}", fooled.stdout);

    let status = p.cairn(&["status", "pipeline.yaml", "--rehash"]).ok();
    assert!(
        status.stdout.contains("file input.txt changed"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("output corrupt"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml", "--rehash"]).ok();
    assert_eq!(p.executions(), sorted(&["mapped", "scored", "src"]));
    let again = p.cairn(&["status", "pipeline.yaml", "--rehash"]).ok();
    assert!(!again.stdout.contains("stale"), "{}", again.stdout);
}

/// Starts `cairn run` on a pipeline whose `slow` stage sleeps, waits until it has begun, and
/// sends `signal`.
fn signal_during_slow_stage(signal: &str) -> (Project, std::process::Output) {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: signals\nstages:\n  a: { kind: test-source }\n  slow: { kind: test-map, inputs: [a], sleep-ms: 30000 }\n  after: { kind: test-map, inputs: [slow] }\n",
    );
    let child = p
        .command(&["run", "pipeline.yaml", "--events", "events.jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.read("events.jsonl").contains(r#""stage":"slow""#) {
        assert!(Instant::now() < deadline, "slow never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    (p, out)
}

fn assert_stopped_cleanly(p: &Project, out: &std::process::Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The finished stage is recorded; nothing of the stopped one is left behind.
    let m: serde_yaml::Value =
        serde_yaml::from_str(&p.read("cache/manifests/signals.yaml")).expect("manifest written");
    assert!(m["stages"]["a"].is_mapping(), "{m:?}");
    assert!(m["stages"]["slow"].is_null(), "{m:?}");
    let tmp: Vec<_> = std::fs::read_dir(p.path("cache/v1/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "scratch left: {tmp:?}");
}

#[test]
fn sigterm_stops_a_run_like_ctrl_c_with_a_message_and_a_consistent_manifest() {
    let (p, out) = signal_during_slow_stage("TERM");
    assert_stopped_cleanly(&p, &out, 143);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGTERM"));
}

#[test]
fn sighup_from_a_closed_terminal_stops_a_run_cleanly() {
    let (p, out) = signal_during_slow_stage("HUP");
    assert_stopped_cleanly(&p, &out, 129);
}

#[test]
fn a_closed_pipe_ends_listing_commands_quietly() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    for args in [
        &["metrics", "pipeline.yaml"][..],
        &["status", "pipeline.yaml"],
        &["dag", "pipeline.yaml"],
        &["show", "pipeline.yaml", "src", "--head", "50"],
        &["kinds"],
    ] {
        // Like `cairn metrics P | head -0`: the reader is gone before cairn writes.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = p
            .command(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}

#[test]
fn a_manifest_that_cannot_be_written_names_its_path_and_keeps_the_summary() {
    let p = project();
    // A dangling link where the manifests directory should be: there is no manifest to read,
    // and writing one fails as a full disk or a read-only mount would.
    std::fs::create_dir_all(p.path("cache")).unwrap();
    std::os::unix::fs::symlink(p.path("nowhere/manifests"), p.path("cache/manifests")).unwrap();
    let run = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot write the manifest") && run.stderr.contains("trust.yaml"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("mapped"),
        "summary hidden: {}",
        run.stdout
    );
    // The results are cached: once the manifest can be written, nothing reruns.
    std::fs::remove_file(p.path("cache/manifests")).unwrap();
    p.executions();
    let again = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(again.stdout.contains("0 ran, 3 cached"), "{}", again.stdout);
}

#[test]
fn a_run_whose_only_stage_fails_writes_no_manifest() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: lonely\nstages:\n  load:\n    kind: load\n    format: delimited\n    columns: [text, label]\n    splits: {train: train.txt}\n",
    );
    p.write("train.txt", "a line without its delimiter\n");
    let run = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(!p.path("cache/manifests/lonely.yaml").exists());
}
