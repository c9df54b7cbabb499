//! Engine overhead: wall time of a no-op `cairn run` and of `cairn status` on a fully cached
//! 11-stage pipeline whose source declares a 1 GiB input file (target: < 50 ms each, and the
//! 1 GiB file must not be rehashed). Run: `cargo bench --bench engine`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 20;

fn cairn(dir: &Path, args: &[&str], debug: bool) -> (f64, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CAIRN_CACHE_DIR");
    if debug {
        cmd.env("RUST_LOG", "debug");
    } else {
        cmd.env_remove("RUST_LOG");
    }
    let start = Instant::now();
    let out = cmd.output().expect("run cairn");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let line = b"the quick brown fox jumps over the lazy dog, again and again and again\n";
        let mut written = 0u64;
        let mut i = 0u64;
        while written < 1 << 30 {
            let l = format!("{i:012} ");
            f.write_all(l.as_bytes()).unwrap();
            f.write_all(line).unwrap();
            written += (l.len() + line.len()) as u64;
            i += 1;
        }
    }
    let mut stages = String::from(
        "name: bench\nstages:\n  src: { kind: test-source, file: big.txt, rows: 1000 }\n",
    );
    for k in 1..=10 {
        let input = if k <= 5 {
            "src".to_string()
        } else {
            format!("m{}", k - 5)
        };
        stages.push_str(&format!(
            "  m{k}: {{ kind: test-map, inputs: [{input}], add: {k} }}\n"
        ));
    }
    std::fs::write(dir.path().join("pipeline.yaml"), stages).unwrap();

    let (cold, _) = cairn(dir.path(), &["run", "pipeline.yaml"], false);
    // The file was written just before the first run: its stat entry is "racy" until hashed
    // again more than a second after its mtime.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, _) = cairn(dir.path(), &["run", "pipeline.yaml"], false);

    let (_, log) = cairn(dir.path(), &["run", "pipeline.yaml"], true);
    let rehashed = log
        .lines()
        .any(|l| l.contains("hashing") && l.contains("big.txt"));

    let mut run = Vec::new();
    let mut status = Vec::new();
    for _ in 0..RUNS {
        run.push(cairn(dir.path(), &["run", "pipeline.yaml"], false).0);
        status.push(cairn(dir.path(), &["status", "pipeline.yaml"], false).0);
    }
    let (rm, rmin, rmax) = stats(run);
    let (sm, smin, smax) = stats(status);
    println!("engine overhead, 11 stages, 1 GiB declared input, {RUNS} runs each");
    println!(
        "first run (hashes 1 GiB, runs 11 stages): {:.0} ms; second run: {:.0} ms",
        cold * 1e3,
        second * 1e3
    );
    println!("| command | median | min | max | target | ratio to target |");
    println!("|---|---|---|---|---|---|");
    for (name, m, lo, hi) in [
        ("cairn run (no-op)", rm, rmin, rmax),
        ("cairn status", sm, smin, smax),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | 50 ms | {:.2}x |",
            m * 1e3,
            lo * 1e3,
            hi * 1e3,
            m / 0.050
        );
    }
    println!(
        "1 GiB input rehashed on a no-op run: {}",
        if rehashed { "YES (bug)" } else { "no" }
    );
    assert!(!rehashed, "the 1 GiB input was rehashed on a no-op run");
}
