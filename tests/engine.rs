//! The engine's promises, checked on real `cairn` invocations with the test-only stage kinds.

mod common;

use common::{Project, sorted};

/// a → b → c, and d beside them reading a's train split.
const PIPELINE: &str = r#"
name: demo
params:
  add: 1
stages:
  a:
    kind: test-source
    rows: 4
    file: input.txt
  b:
    kind: test-map
    inputs: [a]
    add: ${params.add}
  c:
    kind: test-map
    inputs: [b]
    add: 10
  d:
    kind: test-map
    inputs: [a.train]
    add: 100
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.write("input.txt", "first\nsecond\nthird\n");
    p
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = p.read("pipeline.yaml");
    assert!(text.contains(from), "pipeline has no `{from}`");
    p.write("pipeline.yaml", &text.replacen(from, to, 1));
}

#[test]
fn first_run_executes_every_stage_and_second_run_none() {
    let p = project();
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["a", "b", "c", "d"]));
    assert!(out.stdout.contains("4 ran, 0 cached"), "{}", out.stdout);
    let manifest = p.read("cache/manifests/demo.yaml");

    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.executions().is_empty());
    assert!(out.stdout.contains("0 ran, 4 cached"), "{}", out.stdout);
    assert_eq!(
        p.read("cache/manifests/demo.yaml"),
        manifest,
        "a no-op run rewrites nothing"
    );
}

#[test]
fn param_change_reruns_the_stage_and_its_dependents_only() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    edit(&p, "add: 10", "add: 20");
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("params.add 10 → 20"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["c"]));

    edit(&p, "  add: 1\n", "  add: 2\n");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["b", "c"]));
}

#[test]
fn unchanged_output_does_not_rerun_dependents() {
    let p = project();
    // b clamps at 1000: its values (≤ 4) are far below either limit.
    edit(
        &p,
        "add: ${params.add}",
        "add: ${params.add}\n    clamp: 1000",
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    edit(&p, "clamp: 1000", "clamp: 2000");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(
        p.executions(),
        sorted(&["b"]),
        "c must not rerun: b's output is byte-identical"
    );
}

#[test]
fn reverting_a_param_restores_from_cache_without_executing() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let first = p.read("cache/manifests/demo.yaml");
    edit(&p, "add: 10", "add: 20");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    edit(&p, "add: 20", "add: 10");
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("restored from the cache"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.executions().is_empty());
    assert_eq!(p.read("cache/manifests/demo.yaml"), first);
}

#[test]
fn touching_an_input_reruns_nothing_and_editing_it_reruns_its_consumers() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    // Same bytes, new mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.write("input.txt", "first\nsecond\nthird\n");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.executions().is_empty());

    p.write("input.txt", "FIRST\nsecond\nthird\n");
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("file input.txt changed"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["a", "b", "c", "d"]));
}

#[test]
fn a_deleted_object_reruns_exactly_its_owner() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    let manifest = p.read("cache/manifests/demo.yaml");
    let digest = object_of(&manifest, "c");
    std::fs::remove_file(p.path(&object_path(&digest))).unwrap();
    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("output missing"),
        "{}",
        status.stdout
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["c"]));
    assert!(p.path(&object_path(&digest)).exists());
}

#[test]
fn a_corrupt_object_is_reported_and_its_owner_recomputed() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    let manifest = p.read("cache/manifests/demo.yaml");
    let digest = object_of(&manifest, "b");
    let path = p.path(&object_path(&digest));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let status = p.cairn(&["status", "pipeline.yaml"]).ok();
    assert!(
        status.stdout.contains("output corrupt"),
        "{}",
        status.stdout
    );
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(out.stderr.contains("corrupt"), "{}", out.stderr);
    assert_eq!(
        p.executions(),
        sorted(&["b"]),
        "early cutoff: c sees identical output"
    );
    assert_eq!(
        blake3::hash(&std::fs::read(&path).unwrap())
            .to_hex()
            .as_str(),
        digest
    );
}

#[test]
fn frozen_fails_on_a_stale_pipeline_without_running_anything() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    p.cairn(&["run", "--frozen", "pipeline.yaml"]).ok();
    edit(&p, "add: 100", "add: 101");
    let out = p.cairn(&["run", "--frozen", "pipeline.yaml"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("d") && out.stderr.contains("params.add 100 → 101"),
        "{}",
        out.stderr
    );
    assert!(p.executions().is_empty());
}

#[test]
fn a_failed_stage_skips_its_dependents_while_other_branches_finish() {
    let p = project();
    edit(&p, "add: 10", "add: 10\n    fail: true");
    let out = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(p.executions(), sorted(&["a", "b", "c", "d"]));
    assert!(
        out.stdout.contains("FAILED") && out.stdout.contains("failing on purpose"),
        "{}",
        out.stdout
    );
    // A second failure path: a downstream stage is skipped, not run.
    edit(&p, "    fail: true", "    panic: true");
    let text = p.read("pipeline.yaml").replace(
        "  d:\n    kind: test-map\n    inputs: [a.train]",
        "  d:\n    kind: test-map\n    inputs: [c]",
    );
    p.write("pipeline.yaml", &text);
    let out = p.cairn(&["run", "pipeline.yaml"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("panicked") && out.stdout.contains("skipped"),
        "{}",
        out.stdout
    );
    assert_eq!(p.executions(), sorted(&["c"]));
    let manifest = p.read("cache/manifests/demo.yaml");
    assert!(
        manifest.contains("  b:") && !manifest.contains("  c:\n    fingerprint"),
        "{manifest}"
    );
}

#[test]
fn device_stages_never_overlap_while_cpu_stages_run_beside_them() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: queue
stages:
  src: { kind: test-source }
  gpu1: { kind: test-device-map, inputs: [src], sleep-ms: 300 }
  gpu2: { kind: test-device-map, inputs: [src], sleep-ms: 300, add: 1 }
  gpu3: { kind: test-device-map, inputs: [src], sleep-ms: 300, add: 2 }
  cpu1: { kind: test-map, inputs: [src], sleep-ms: 500 }
  cpu2: { kind: test-map, inputs: [src], sleep-ms: 500, add: 1 }
"#,
    );
    p.cairn(&[
        "run",
        "pipeline.yaml",
        "--jobs",
        "2",
        "--events",
        "events.jsonl",
    ])
    .ok();
    let events: Vec<serde_json::Value> = p
        .read("events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let span = |stage: &str| {
        let seq = |ev: &str| {
            events
                .iter()
                .find(|e| e["stage"] == stage && e["event"] == ev)
                .unwrap_or_else(|| panic!("no {ev} event for {stage}"))["seq"]
                .as_u64()
                .unwrap()
        };
        (seq("begin"), seq("end"))
    };
    let overlap = |a: (u64, u64), b: (u64, u64)| a.0 < b.1 && b.0 < a.1;
    let gpus = ["gpu1", "gpu2", "gpu3"].map(span);
    for i in 0..3 {
        for j in i + 1..3 {
            assert!(
                !overlap(gpus[i], gpus[j]),
                "device stages overlapped: {events:?}"
            );
        }
    }
    let cpus = ["cpu1", "cpu2"].map(span);
    assert!(
        overlap(cpus[0], cpus[1]),
        "CPU stages ran one after another: {events:?}"
    );
    assert!(
        cpus.iter().any(|&c| gpus.iter().any(|&g| overlap(c, g))),
        "no CPU stage ran beside a device stage: {events:?}"
    );
}

#[test]
fn target_runs_the_stage_and_its_inputs_and_force_reruns() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml", "--target", "b"]).ok();
    assert_eq!(p.executions(), sorted(&["a", "b"]));
    p.cairn(&["run", "pipeline.yaml", "--target", "b", "--downstream"])
        .ok();
    assert_eq!(p.executions(), sorted(&["c"]));
    p.cairn(&["run", "pipeline.yaml", "--force", "a"]).ok();
    assert_eq!(
        p.executions(),
        sorted(&["a", "d"]),
        "a reran; identical output keeps b and c cached"
    );
    let dry = p
        .cairn(&["run", "pipeline.yaml", "--force-all", "--dry-run"])
        .ok();
    assert!(dry.stdout.contains("would run"), "{}", dry.stdout);
    assert!(p.executions().is_empty());
    let bad = p.cairn(&["run", "pipeline.yaml", "--target", "zz"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("`zz` is not a stage"), "{}", bad.stderr);
}

#[test]
fn gc_keeps_what_manifests_reference_and_removes_the_rest() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    edit(&p, "add: 10", "add: 20");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    p.executions();
    let before = p.objects().len();
    let dry = p.cairn(&["gc", "--dry-run", "pipeline.yaml"]).ok();
    assert!(
        dry.stdout.contains("would delete 1 entries"),
        "{}",
        dry.stdout
    );
    assert_eq!(p.objects().len(), before);
    p.cairn(&["gc", "pipeline.yaml"]).ok();
    assert!(p.objects().len() < before);
    p.cairn(&["run", "pipeline.yaml", "--frozen"]).ok();
    edit(&p, "add: 20", "add: 10");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(
        p.executions(),
        sorted(&["c"]),
        "the old result was collected"
    );
}

#[test]
fn show_prints_rows_and_verify_recomputes_identically() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let show = p.cairn(&["show", "pipeline.yaml", "b", "--head", "2"]).ok();
    insta::assert_snapshot!(show.stdout, @r"
    # b / train
    # source: test
       id  value  text
    0  0   1      first
    1  1   2      second
    [4 rows x 3 columns]
    ");
    let verify = p.cairn(&["verify", "pipeline.yaml"]).ok();
    assert_eq!(
        verify.stdout.matches("identical").count(),
        4,
        "{}",
        verify.stdout
    );
    let metrics = p.cairn(&["metrics", "pipeline.yaml"]).ok();
    let sum = metrics.stdout.lines().find(|l| l.contains(" sum "));
    assert!(
        sum.is_some_and(|l| l.ends_with(" 20")),
        "{}",
        metrics.stdout
    );
}

#[test]
fn a_second_run_waits_for_the_lock_and_gives_up_after_the_timeout() {
    let p = project();
    edit(&p, "add: 100", "add: 100\n    sleep-ms: 3000");
    let mut first = p
        .command(&["run", "pipeline.yaml"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let second = p.cairn(&["run", "pipeline.yaml", "--lock-timeout", "1"]);
    first.wait().unwrap();
    assert_eq!(second.code, 1);
    assert!(
        second.stderr.contains("waiting for another cairn"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("gave up"), "{}", second.stderr);
}

#[test]
fn dag_renders_as_text_mermaid_and_dot() {
    let p = project();
    let text = p.cairn(&["dag", "pipeline.yaml"]).ok().stdout;
    insta::assert_snapshot!(text, @r"
    a  test-source
    b  test-map ← a
    c  test-map ← b
    d  test-map ← a.train
    ");
    let mermaid = p
        .cairn(&["dag", "pipeline.yaml", "--format", "mermaid"])
        .ok()
        .stdout;
    assert!(
        mermaid.starts_with("graph TD") && mermaid.contains("a -->|train| d"),
        "{mermaid}"
    );
    let dot = p
        .cairn(&["dag", "pipeline.yaml", "--format", "dot"])
        .ok()
        .stdout;
    assert!(dot.contains("\"b\" -> \"c\";"), "{dot}");
}

#[test]
fn file_outputs_are_cached_and_handed_to_consumers() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: files\nstages:\n  a: { kind: test-source, write-file: true }\n  b: { kind: test-map, inputs: [a] }\n",
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let manifest = p.read("cache/manifests/files.yaml");
    assert!(
        manifest.contains("files/sub/note.txt") && manifest.contains("files/copied.txt"),
        "{manifest}"
    );
}

#[test]
fn export_copies_a_fresh_stages_outputs_and_refuses_a_stale_one() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: files\nstages:\n  a: { kind: test-source, write-file: true }\n",
    );
    let never = p.cairn(&["export", "pipeline.yaml", "a", "out"]);
    assert_ne!(never.code, 0);
    assert!(never.stderr.contains("has not run yet"), "{}", never.stderr);
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let out = p.cairn(&["export", "pipeline.yaml", "a", "out"]).ok();
    assert!(out.stdout.contains("out/sub/note.txt"), "{}", out.stdout);
    assert!(p.path("out/sub/note.txt").is_file() && p.path("out/train.parquet").is_file());

    p.write(
        "pipeline.yaml",
        "name: files\nstages:\n  a: { kind: test-source, write-file: true, rows: 7 }\n",
    );
    let stale = p.cairn(&["export", "pipeline.yaml", "a", "out2"]);
    assert_ne!(stale.code, 0);
    assert!(
        stale.stderr.contains("stale") && stale.stderr.contains("--target a"),
        "{}",
        stale.stderr
    );
    assert!(!p.path("out2").exists());
}

/// `cairn path` names the cached object itself, readable in place as Parquet (what duckdb or
/// pandas would open), and says what a stage has when asked for what it lacks.
#[test]
fn path_prints_a_cached_table_readable_in_place() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: paths\nstages:\n  a: { kind: test-source, write-file: true, rows: 6 }\n",
    );
    let never = p.cairn(&["path", "pipeline.yaml", "a"]);
    assert!(never.stderr.contains("has not run yet"), "{}", never.stderr);
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let read_rows = |path: &str| {
        let file = std::fs::File::open(path.trim()).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        reader.map(|b| b.unwrap().num_rows()).sum::<usize>()
    };
    let train = p.cairn(&["path", "pipeline.yaml", "a"]).ok().stdout;
    assert!(train.trim().contains("/objects/"), "{train}");
    assert_eq!(read_rows(&train), 6, "the default is the train split");
    let test = p
        .cairn(&["path", "pipeline.yaml", "a", "--split", "test"])
        .ok()
        .stdout;
    assert_ne!(test, train);
    read_rows(&test);
    let note = p
        .cairn(&["path", "pipeline.yaml", "a", "--file", "sub/note.txt"])
        .ok()
        .stdout;
    assert!(std::fs::read_to_string(note.trim()).is_ok());
    let all = p
        .cairn(&["path", "pipeline.yaml", "a", "--all"])
        .ok()
        .stdout;
    let names: Vec<&str> = all.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert!(
        names.contains(&"train.parquet") && names.contains(&"sub/note.txt"),
        "{all}"
    );

    let no_split = p.cairn(&["path", "pipeline.yaml", "a", "--split", "dev"]);
    assert_ne!(no_split.code, 0);
    assert!(
        no_split.stderr.contains("no split `dev`") && no_split.stderr.contains("test, train"),
        "{}",
        no_split.stderr
    );
    let no_file = p.cairn(&["path", "pipeline.yaml", "a", "--file", "x.png"]);
    assert!(
        no_file.stderr.contains("sub/note.txt"),
        "{}",
        no_file.stderr
    );
    // A damaged object is never handed out.
    let object = train.trim();
    let mut perms = std::fs::metadata(object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(object, perms).unwrap();
    std::fs::write(object, b"not parquet").unwrap();
    let damaged = p.cairn(&["path", "pipeline.yaml", "a"]);
    assert_ne!(damaged.code, 0);
    assert!(
        damaged.stderr.contains("missing or corrupt"),
        "{}",
        damaged.stderr
    );
}

#[test]
fn predict_names_the_stages_that_can() {
    let p = project();
    let out = p.cairn(&["predict", "pipeline.yaml", "b", "some text"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("`test-map` stage, which does not predict")
            && out.stderr.contains("none"),
        "{}",
        out.stderr
    );
    let out = p.cairn(&["predict", "pipeline.yaml", "nope", "x"]);
    assert!(
        out.stderr.contains("`nope` is not a stage"),
        "{}",
        out.stderr
    );
}

#[test]
fn float_metrics_read_back_from_the_cache_leave_the_manifest_unchanged() {
    // A value serde_json's fast float parser rounds one ULP off (seen on a real F1 score).
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: floats\nstages:\n  a: { kind: test-source, score: 0.9241353648286049 }\n",
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let manifest = p.read("cache/manifests/floats.yaml");
    assert!(manifest.contains("0.9241353648286049"), "{manifest}");
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(!out.stdout.contains("manifest cache"), "{}", out.stdout);
    assert_eq!(p.read("cache/manifests/floats.yaml"), manifest);
}

/// The digest of a stage's first output as recorded in the manifest.
fn object_of(manifest: &str, stage: &str) -> String {
    let m: serde_yaml::Value = serde_yaml::from_str(manifest).unwrap();
    let outputs = m["stages"][stage]["outputs"].as_mapping().unwrap();
    outputs.values().next().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn object_path(digest: &str) -> String {
    format!("cache/v1/objects/{}/{}", &digest[..2], &digest[2..])
}

#[test]
fn ctrl_c_stops_cleanly_keeps_finished_results_and_a_rerun_continues() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: interrupt\nstages:\n  a: { kind: test-source }\n  slow: { kind: test-map, inputs: [a], sleep-ms: 20000 }\n  after: { kind: test-map, inputs: [slow] }\n",
    );
    let child = p
        .command(&["run", "pipeline.yaml", "--events", "events.jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow stage has begun, then press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let slow_began = || {
        p.read("events.jsonl").lines().any(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            e["event"] == "begin" && e["stage"] == "slow"
        })
    };
    while !slow_began() {
        assert!(std::time::Instant::now() < deadline, "slow never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cancelled"), "{stdout}");
    assert_eq!(p.executions(), sorted(&["a", "slow"]));

    // a's result was kept; the rerun (made quick) runs only what did not finish.
    let text = p
        .read("pipeline.yaml")
        .replace("sleep-ms: 20000", "sleep-ms: 10");
    p.write("pipeline.yaml", &text);
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["after", "slow"]));
}

/// A GPU's arithmetic differs from the CPU's in the last bits, so a device stage's result from
/// one is never the other's cache hit; CPU stages and a stage pinned to `device: cpu` are
/// unaffected. (Fingerprints only: no GPU is needed to compute them.)
#[test]
fn a_device_stage_run_on_a_gpu_is_cached_apart_from_its_cpu_result() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: devices
stages:
  src: { kind: test-source }
  on-run-device: { kind: test-device-map, inputs: [src] }
  pinned: { kind: test-device-map, inputs: [src], add: 1, device: cpu }
  cpu: { kind: test-map, inputs: [on-run-device] }
"#,
    );
    p.cairn(&["run", "pipeline.yaml", "--device", "cpu"]).ok();
    let states = |device: &str| -> Vec<(String, String)> {
        let run = p.cairn(&["status", "pipeline.yaml", "--json", "--device", device]);
        let statuses: Vec<serde_json::Value> = serde_json::from_str(&run.ok().stdout).unwrap();
        statuses
            .iter()
            .map(|s| {
                let state = s["state"].as_str().unwrap().to_string();
                (s["stage"].as_str().unwrap().to_string(), state)
            })
            .collect()
    };
    let fresh = |stage: &str| (stage.to_string(), "fresh".to_string());
    assert_eq!(
        states("cpu"),
        vec![
            fresh("src"),
            fresh("on-run-device"),
            fresh("pinned"),
            fresh("cpu")
        ]
    );
    let on_gpu = states("cuda:0");
    let why = p
        .cairn(&["status", "pipeline.yaml", "--device", "cuda:0"])
        .ok()
        .stdout;
    assert!(why.contains("no result on a GPU yet"), "{why}");
    assert_eq!(on_gpu[0], fresh("src"));
    assert_ne!(on_gpu[1], fresh("on-run-device"), "{on_gpu:?}");
    assert_eq!(on_gpu[2], fresh("pinned"));
    assert_ne!(
        on_gpu[3],
        fresh("cpu"),
        "its input is not fresh: {on_gpu:?}"
    );
    if !cairn_stages::cuda_compiled() {
        assert_eq!(
            states("auto"),
            states("cpu"),
            "auto is the CPU in a build without CUDA"
        );
    }
}

/// `metrics --diff` / `params --diff`: the manifest against the one committed at a revision
/// (HEAD by default), changes only unless `--all`, as a table, Markdown or JSON.
#[test]
fn metrics_and_params_diff_against_a_git_revision() {
    let p = Project::new();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(p.path(""))
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let pipeline = |rows: u32, score: f64| {
        format!(
            "name: diffs\nstages:\n  a: {{ kind: test-source, rows: {rows}, score: {score} }}\n  b: {{ kind: test-map, inputs: [a] }}\n"
        )
    };
    p.write("pipeline.yaml", &pipeline(4, 0.5));
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let not_a_repo = p.cairn(&["metrics", "pipeline.yaml", "--diff"]);
    assert_ne!(not_a_repo.code, 0);
    assert!(
        not_a_repo.stderr.contains("not in a git work tree"),
        "{}",
        not_a_repo.stderr
    );

    git(&["init", "-q"]);
    git(&["add", "pipeline.yaml", "cache/manifests/diffs.yaml"]);
    git(&["commit", "-q", "-m", "first"]);
    let table = p.cairn(&["metrics", "pipeline.yaml"]).ok().stdout;
    assert!(
        table.lines().next().unwrap().starts_with("stage"),
        "{table}"
    );
    assert!(
        table.contains("score") && table.contains("0.5000"),
        "{table}"
    );
    let none = p.cairn(&["metrics", "pipeline.yaml", "--diff"]).ok().stdout;
    assert_eq!(none, "no change since HEAD\n");

    p.write("pipeline.yaml", &pipeline(6, 0.75));
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let diff = p.cairn(&["metrics", "pipeline.yaml", "--diff"]).ok().stdout;
    let score = diff
        .lines()
        .find(|l| l.contains("score"))
        .unwrap_or_default();
    assert!(
        score.contains("0.5000") && score.contains("0.7500") && score.contains("+0.2500"),
        "{diff}"
    );
    let rows = diff
        .lines()
        .find(|l| l.contains("rows"))
        .unwrap_or_default();
    assert!(rows.contains("+2"), "{diff}");
    assert!(diff.contains("sum"), "b's metric changed too: {diff}");
    let md = p
        .cairn(&["metrics", "pipeline.yaml", "--diff", "HEAD", "--md"])
        .ok()
        .stdout;
    assert!(
        md.starts_with("| stage | split | name | HEAD | workspace | change |"),
        "{md}"
    );
    let json = p
        .cairn(&["metrics", "pipeline.yaml", "--diff", "--json"])
        .ok()
        .stdout;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let changed = json["rows"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|r| r["name"] == "score" && r["change"] == 0.25),
        "{json}"
    );

    let params = p.cairn(&["params", "pipeline.yaml", "--diff"]).ok().stdout;
    let line = params
        .lines()
        .find(|l| l.contains(" rows "))
        .unwrap_or_default();
    assert!(
        line.starts_with("a ") && line.contains('4') && line.contains('6'),
        "{params}"
    );
    assert!(
        !params.contains("offset"),
        "unchanged params are left out: {params}"
    );
    let all = p
        .cairn(&["params", "pipeline.yaml", "--diff", "--all"])
        .ok()
        .stdout;
    assert!(all.contains("offset"), "{all}");

    let bad = p.cairn(&["metrics", "pipeline.yaml", "--diff", "no-such-rev"]);
    assert!(
        bad.stderr.contains("`no-such-rev` is not a git revision"),
        "{}",
        bad.stderr
    );
}
