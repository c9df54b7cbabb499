//! Crash harness (ignored by default; run with `cargo test --release --test crash -- --ignored`):
//! kills `cairn run` with SIGKILL at random moments, then checks that a rerun completes and that
//! every cached object still matches its digest and every entry names only present objects.
//! `CRASH_ITERATIONS` sets the number of kills (default 120).

mod common;

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
    let iterations: u64 = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
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

        let rerun = p.cairn(&["run", "pipeline.yaml"]);
        assert_eq!(
            rerun.code, 0,
            "iteration {i}: rerun failed:\n{}\n{}",
            rerun.stdout, rerun.stderr
        );
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
            let e: serde_json::Value = serde_json::from_slice(
                &std::fs::read(entry.path()).unwrap(),
            )
            .unwrap_or_else(|err| {
                panic!(
                    "iteration {i}: entry {} unreadable: {err}",
                    entry.path().display()
                )
            });
            for out in e["outputs"].as_object().unwrap().values() {
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
    eprintln!(
        "{iterations} SIGKILLs ({killed_while_running} while cairn was running); every rerun completed, every object matched its digest"
    );
}
