//! Sweeps (`matrix:`) and named inputs, checked on real `cairn` invocations with the test-only
//! kinds: cell ids and order, one fingerprint and cache entry per cell, adding a value runs
//! only the new cells, a sweep's id names all its cells, and named inputs reach the kind by
//! name with their names in the fingerprint.

mod common;

use common::{Project, sorted};

/// `b` sweeps 2 × 2 cells over `src`; `pick` takes one cell of `b` per value of its own
/// sweep; `all` takes every cell of `b`; `join` names its inputs.
const PIPELINE: &str = r#"
name: sweep
stages:
  src:
    kind: test-source
    rows: 2
  b:
    kind: test-map
    inputs: [src]
    matrix:
      n: [1, 2]
      m: [10, 20]
    add: ${matrix.n}
    clamp: ${matrix.m}
  pick:
    kind: test-map
    matrix: {n: [1, 2]}
    inputs: ["b-${matrix.n}-10.train"]
  all:
    kind: test-map
    inputs: [b]
  join:
    kind: test-join
    inputs:
      right: b
      left: src
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = p.read("pipeline.yaml");
    assert!(text.contains(from), "pipeline has no `{from}`");
    p.write("pipeline.yaml", &text.replacen(from, to, 1));
}

/// Each recorded stage's fingerprint, in the manifest's order.
fn fingerprints(p: &Project) -> Vec<(String, String)> {
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&p.read("cache/manifests/sweep.yaml")).expect("manifest");
    let stages = manifest["stages"].as_mapping().expect("stages");
    stages
        .iter()
        .map(|(id, s)| {
            let fingerprint = s["fingerprint"].as_str().expect("fingerprint");
            (id.as_str().unwrap().to_string(), fingerprint.to_string())
        })
        .collect()
}

fn fingerprint_of(p: &Project, id: &str) -> String {
    let all = fingerprints(p);
    let found = all.iter().find(|(s, _)| s == id);
    found.unwrap_or_else(|| panic!("no {id}")).1.clone()
}

fn metric(p: &Project, stage: &str, name: &str) -> String {
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&p.read("cache/manifests/sweep.yaml")).expect("manifest");
    let value = &manifest["stages"][stage]["metrics"][name];
    serde_yaml::to_string(value).unwrap().trim().to_string()
}

#[test]
fn cells_are_named_by_their_values_in_the_order_written() {
    let p = project();
    let dag = p.cairn(&["dag", "pipeline.yaml"]).ok().stdout;
    let lines: Vec<String> = dag
        .lines()
        .map(|l| l.replace(char::is_whitespace, " "))
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "src", "b-1-10", "b-1-20", "b-2-10", "b-2-20", "pick-1", "pick-2", "all", "join"
        ],
        "{dag}"
    );
    // `${matrix.n}` in an input names one cell; the sweep's id names all of them, in order.
    assert!(dag.contains("← b-2-10.train\n"), "{dag}");
    assert!(dag.contains("← b-1-10, b-1-20, b-2-10, b-2-20\n"), "{dag}");
    assert!(
        dag.contains("← left=src, right=b-1-10, right=b-1-20, right=b-2-10, right=b-2-20\n"),
        "{dag}"
    );
}

#[test]
fn each_cell_has_its_own_stable_fingerprint_and_a_second_run_is_fully_cached() {
    let p = project();
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(out.stdout.contains("9 ran, 0 cached"), "{}", out.stdout);
    let first = fingerprints(&p);
    let cells: Vec<&String> = first
        .iter()
        .filter(|(id, _)| id.starts_with("b-"))
        .map(|(_, f)| f)
        .collect();
    assert_eq!(cells.len(), 4);
    let distinct: std::collections::BTreeSet<&&String> = cells.iter().collect();
    assert_eq!(distinct.len(), 4, "every cell has its own fingerprint");
    // `${matrix.n}` kept its type: `add` is a number, so each cell adds its own n.
    assert_eq!(metric(&p, "b-1-10", "sum"), "6"); // 2 × ((0+1) + (1+1)): train and test
    assert_eq!(metric(&p, "b-2-10", "sum"), "10");

    p.executions();
    let out = p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.executions().is_empty());
    assert!(out.stdout.contains("0 ran, 9 cached"), "{}", out.stdout);
    assert_eq!(fingerprints(&p), first, "fingerprints are stable");
}

#[test]
fn adding_a_value_runs_only_the_new_cells_and_the_stages_taking_all_of_them() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let before = fingerprints(&p);
    p.executions();
    edit(
        &p,
        "n: [1, 2]\n      m: [10, 20]",
        "n: [1, 2, 3]\n      m: [10, 20]",
    );
    let status = p.cairn(&["status", "pipeline.yaml"]).ok().stdout;
    assert!(status.contains("b-3-10"), "{status}");
    p.cairn(&["run", "pipeline.yaml"]).ok();
    // Two new cells, and the two stages that take every cell of `b`; `pick` takes one cell.
    assert_eq!(p.executions(), sorted(&["b-3-10", "b-3-20", "all", "join"]));
    let after = fingerprints(&p);
    for (id, fingerprint) in before.iter().filter(|(id, _)| id.starts_with("b-")) {
        let now = after.iter().find(|(s, _)| s == id).unwrap();
        assert_eq!(&now.1, fingerprint, "{id} kept its fingerprint");
    }
    let all_before = before.iter().find(|(s, _)| s == "all").unwrap();
    assert_ne!(fingerprint_of(&p, "all"), all_before.1);
}

#[test]
fn a_sweeps_id_targets_all_its_cells_and_status_and_metrics_show_each() {
    let p = project();
    let out = p.cairn(&["run", "pipeline.yaml", "--target", "b"]).ok();
    assert!(out.stdout.contains("5 ran, 0 cached"), "{}", out.stdout);
    assert_eq!(
        p.executions(),
        sorted(&["src", "b-1-10", "b-1-20", "b-2-10", "b-2-20"])
    );
    let status = p.cairn(&["status", "pipeline.yaml"]).ok().stdout;
    let state = |id: &str| {
        let line = status
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id));
        line.and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(state("b-2-20").as_deref(), Some("fresh"), "{status}");
    assert_eq!(state("pick-2").as_deref(), Some("never"), "{status}");
    let metrics = p.cairn(&["metrics", "pipeline.yaml"]).ok().stdout;
    assert!(metrics.contains("b-2-20"), "{metrics}");
}

#[test]
fn named_inputs_reach_the_kind_by_name_with_their_cells_values() {
    let p = project();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    // Written `right` first; handed over in the kind's order, `left` first.
    assert_eq!(
        metric(&p, "join", "from"),
        "left:src right:b-1-10[m=10,n=1] right:b-1-20[m=20,n=1] right:b-2-10[m=10,n=2] right:b-2-20[m=20,n=2]"
    );
}

const JOIN: &str = r#"
name: sweep
stages:
  a:
    kind: test-source
    rows: 2
  b:
    kind: test-source
    rows: 2
    offset: 5
  c:
    kind: test-source
    rows: 2
    offset: 7
  join:
    kind: test-join
    inputs: {left: a, right: [b, c]}
"#;

#[test]
fn the_names_of_named_inputs_are_part_of_the_fingerprint() {
    let p = Project::new();
    p.write("pipeline.yaml", JOIN);
    p.cairn(&["run", "pipeline.yaml"]).ok();
    let both_right = fingerprint_of(&p, "join");
    let sum = metric(&p, "join", "from");
    assert_eq!(sum, "left:a right:b right:c");

    // The same stages in the same order, and the same output (bias adds as right does): only
    // the names differ, and the stage runs again.
    edit(&p, "right: [b, c]", "right: b, bias: c");
    p.executions();
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["join"]));
    assert_ne!(fingerprint_of(&p, "join"), both_right);

    // Writing the names in another order changes nothing.
    edit(
        &p,
        "{left: a, right: b, bias: c}",
        "{bias: c, right: b, left: a}",
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert!(p.executions().is_empty());

    // Swapping two inputs between names changes the fingerprint.
    let before = fingerprint_of(&p, "join");
    edit(
        &p,
        "{bias: c, right: b, left: a}",
        "{bias: b, right: c, left: a}",
    );
    p.cairn(&["run", "pipeline.yaml"]).ok();
    assert_eq!(p.executions(), sorted(&["join"]));
    assert_ne!(fingerprint_of(&p, "join"), before);
}

/// A variable's values may be a pipeline param holding the list, so two sweeps share it and
/// adding a value there adds a cell to both.
#[test]
fn a_param_list_gives_several_sweeps_their_values() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: sweep
params:
  ns: [1, 2]
stages:
  src: {kind: test-source, rows: 2}
  a:
    kind: test-map
    inputs: [src]
    matrix: {n: "${params.ns}"}
    add: ${matrix.n}
  b:
    kind: test-map
    matrix: {n: "${params.ns}"}
    inputs: ["a-${matrix.n}"]
"#,
    );
    let dag = p.cairn(&["dag", "pipeline.yaml"]).ok().stdout;
    let ids: Vec<&str> = dag.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(ids, ["src", "a-1", "a-2", "b-1", "b-2"], "{dag}");
    edit(&p, "ns: [1, 2]", "ns: [1, 2, 3]");
    let dag = p.cairn(&["dag", "pipeline.yaml"]).ok().stdout;
    assert!(dag.contains("b-3") && dag.contains("← a-3"), "{dag}");
    edit(&p, "ns: [1, 2, 3]", "ns: 3");
    let run = p.cairn(&["dag", "pipeline.yaml"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("matrix variable `n` must list its values"),
        "{}",
        run.stderr
    );
}
