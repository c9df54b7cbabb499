//! Crash harness (ignored by default; run with `cargo test --release --test crash -- --ignored`):
//! kills `cairn run` with SIGKILL at random moments, then checks that a rerun completes and that
//! every cached object still matches its digest and every entry names only present objects.
//! `CRASH_ITERATIONS` sets the number of kills (default 120); the SIGTERM harness beside it
//! (`TERM_ITERATIONS`, default 50) checks the message, the exit code and the manifest.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::Project;

fn pipeline(seed: u64) -> String {
    format!(
        r#"
name: crash
stages:
  src: {{ kind: test-source, rows: 200000, offset: {} }}
  a: {{ kind: test-map, inputs: [src], add: {} }}
  b: {{ kind: test-map, inputs: [src], add: {}, sleep-ms: 5 }}
  c: {{ kind: test-device-map, inputs: [a, b], add: 1 }}
  d: {{ kind: test-source, rows: 1000, write-file: true, offset: {} }}
"#,
        seed % 1000,
        (seed >> 10) % 1000,
        (seed >> 20) % 1000,
        (seed >> 30) % 1000
    )
}

/// xorshift: reproducible kill times without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
#[ignore = "slow: run by hand (see the module doc)"]
fn sigkill_at_random_moments_never_corrupts_the_cache() {
    let iterations = iterations("CRASH_ITERATIONS", 120);
    let p = Project::new();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut killed_while_running = 0;
    for i in 0..iterations {
        p.write("pipeline.yaml", &pipeline(rng.next()));
        let mut child = p
            .command(&["run", "pipeline.yaml"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next() % 250));
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        rerun_completes_and_cache_is_sound(&p, i);
    }
    eprintln!(
        "{iterations} SIGKILLs ({killed_while_running} while cairn was running); every rerun completed, every object matched its digest"
    );
}

/// SIGTERM (what `timeout`, CI cancellation and `docker stop` send) at random moments: cairn
/// says it was interrupted, exits 143, and leaves a manifest whose every record is in the cache.
/// `TERM_ITERATIONS` sets the number of signals (default 50).
#[test]
#[ignore = "slow: run by hand (see the module doc)"]
fn sigterm_at_random_moments_leaves_a_message_and_a_consistent_manifest() {
    let iterations = iterations("TERM_ITERATIONS", 50);
    let p = Project::new();
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let mut stopped = 0;
    let mut early = 0;
    for i in 0..iterations {
        p.write("pipeline.yaml", &pipeline(rng.next()));
        let child = p
            .command(&["run", "pipeline.yaml"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let delay = rng.next() % 400;
        std::thread::sleep(Duration::from_millis(delay));
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            // Finished before the signal arrived.
            Some(0) => {}
            Some(143) => {
                stopped += 1;
                assert!(
                    stderr.contains("SIGTERM") && stderr.contains("interrupted"),
                    "iteration {i}: no message:\n{stderr}"
                );
            }
            // Sent before cairn's main installed its handler (process start-up takes a few
            // ms): the default action ends it before it has touched anything.
            None if delay < 20 && out.status.signal() == Some(15) => early += 1,
            other => panic!("iteration {i}: exit {other:?} after {delay} ms:\n{stderr}"),
        }
        manifest_records_only_cached_results(&p, i);
        rerun_completes_and_cache_is_sound(&p, i);
    }
    eprintln!(
        "{iterations} SIGTERMs ({stopped} stopped a running cairn, {early} came before its main started, the rest after it finished); every stop printed its message, every manifest was consistent"
    );
}

fn iterations(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every output the manifest records is in the cache with its digest.
fn manifest_records_only_cached_results(p: &Project, i: u64) {
    let text = p.read("cache/manifests/crash.yaml");
    if text.is_empty() {
        return;
    }
    let m: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("iteration {i}: manifest unreadable: {e}"));
    for (stage, record) in m["stages"].as_mapping().unwrap() {
        for out in record["outputs"].as_mapping().unwrap().values() {
            let d = out["digest"].as_str().unwrap();
            let path = p.path(&format!("cache/v1/objects/{}/{}", &d[..2], &d[2..]));
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|_| panic!("iteration {i}: {stage:?} names a missing object"));
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), d, "iteration {i}");
        }
    }
}

/// A rerun completes, leaves every stage fresh, and every object and entry is sound.
fn rerun_completes_and_cache_is_sound(p: &Project, i: u64) {
    let rerun = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(
        rerun.code, 0,
        "iteration {i}: rerun failed:\n{}\n{}",
        rerun.stdout, rerun.stderr
    );
    // --frozen reads every entry through its seal: an edited or torn entry is not fresh.
    let frozen = p.cairn(&["run", "--frozen", "pipeline.yaml"]);
    assert_eq!(
        frozen.code, 0,
        "iteration {i}: not fresh after rerun:\n{}",
        frozen.stderr
    );
    for object in p.objects() {
        let name: String = object
            .iter()
            .rev()
            .take(2)
            .map(|s| s.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let digest = blake3::hash(&std::fs::read(&object).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(
            digest,
            name,
            "iteration {i}: object {} fails its digest",
            object.display()
        );
    }
    for entry in std::fs::read_dir(p.path("cache/v1/entries"))
        .unwrap()
        .flatten()
    {
        let e: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap())
            .unwrap_or_else(|err| {
                panic!(
                    "iteration {i}: entry {} unreadable: {err}",
                    entry.path().display()
                )
            });
        for out in e["entry"]["outputs"].as_object().unwrap().values() {
            let d = out["digest"].as_str().unwrap();
            assert!(
                p.path(&format!("cache/v1/objects/{}/{}", &d[..2], &d[2..]))
                    .exists(),
                "iteration {i}: entry names a missing object"
            );
        }
    }
    p.executions();
}
