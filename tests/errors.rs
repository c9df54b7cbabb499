//! The bad-input corpus: every case under tests/errors/ makes `cairn` fail, and fail well.
//!
//! A case is one broken pipeline file, `tests/errors/<case>.yaml`, or a folder
//! `tests/errors/<case>/` holding `pipeline.yaml`, the data (and tiny model) files it reads and
//! optionally a `case.yaml` recipe ([`Recipe`]: fixtures to copy in, Parquet files to write,
//! commands that must succeed first, files to damage, a process holding the cache lock, the
//! failing command, the stage that must fail). Each case is copied into a fresh temp dir and
//! run there with `--cache-dir cache`, so nothing it does touches the repository. Then:
//!
//! - the exit code is not 0 and nothing panicked (no `panicked`, no `RUST_BACKTRACE`);
//! - the message says where: `--> <pipeline>:line:col` for a pipeline mistake, the failing
//!   stage's id on its FAILED line for a stage failure, and every `names:` text of the recipe
//!   (e.g. `data/train.csv:3`, or `--target` for a command-line mistake);
//! - nothing is half-written: the cache's `v1/tmp` is empty or absent, every object's name is
//!   the blake3 of its bytes, and every entry the command added belongs to a stage the
//!   manifest now records, never the failing stage;
//! - the manifest is untouched: byte-identical when it existed (unless a stage ran now, then
//!   only that stage's record may change), and when it did not, it is absent or records only
//!   stages that ran now; a pipeline file that does not load creates no cache at all;
//! - stderr (and stdout, when there is any) is a snapshot, `tests/snapshots/errors__*`, with the
//!   temp dir, digests and timings filtered.
//!
//! `ERRORS_CASE=text cargo test --test errors` runs only the cases whose name contains `text`;
//! `INSTA_UPDATE=always` writes new snapshots (read each one before keeping it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array};
use arrow::array::{ListArray, StringArray};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;
use serde_yaml::Value;

/// The snapshot name every case shares; the case name is its suffix.
const SNAPSHOT: &str = "broken_pipelines_fail_with_located_messages_and_touch_no_cache";

/// What a case folder's `case.yaml` may say. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Recipe {
    /// What the case is about, for people reading it.
    #[serde(default)]
    #[allow(dead_code)]
    about: String,
    /// Repository files or folders copied into the case before anything runs: destination
    /// (relative to the case) → source (relative to the repository), e.g.
    /// `{model: tests/fixtures/encoders/bert}`, so tiny models are not committed twice.
    #[serde(default)]
    copy: BTreeMap<String, String>,
    /// Parquet files written into the case: path → columns in order, each a list of values.
    /// Strings become utf8, integers int64, other numbers float64, lists of numbers
    /// `fixed_size_list<float32>` (`list<float32>` when their lengths differ). YAML's `.nan`
    /// and `.inf` give non-finite values.
    #[serde(default)]
    parquet: BTreeMap<String, serde_yaml::Mapping>,
    /// cairn commands that must succeed first, e.g. `[[run, pipeline.yaml]]` to fill the cache
    /// (`--cache-dir` is added).
    #[serde(default)]
    before: Vec<Vec<String>>,
    /// File changes applied after `before`, in order (paths relative to the case; the cache is
    /// `cache/`).
    #[serde(default)]
    mutate: Vec<Mutation>,
    /// A cairn command kept running while the failing one runs, e.g. a slow pipeline holding
    /// the cache lock. The harness waits until a stage of it has started (it appends to
    /// `$CAIRN_TEST_LOG`, see the `test-*` kinds) and lets it finish before checking the cache.
    #[serde(default)]
    hold: Option<Vec<String>>,
    /// The failing command. Default `[run, pipeline.yaml]`.
    #[serde(default)]
    command: Option<Vec<String>>,
    /// `--cache-dir`. Default `cache`.
    #[serde(default)]
    cache_dir: Option<String>,
    /// The stage that fails: its FAILED line must name it, and it must leave no entry and no
    /// manifest record. Default: none, the failure is the pipeline's or the command line's.
    #[serde(default)]
    stage: Option<String>,
    /// Texts the output must contain, e.g. `data/train.csv:3` (a data file's line), or
    /// `--target` for a command-line mistake.
    #[serde(default)]
    names: Vec<String>,
}

/// One file change; exactly one action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Mutation {
    /// Relative to the case; `*` in a path segment matches any name (objects are named by
    /// digest: `cache/v1/objects/*/*`), and the change applies to every match (at least one).
    path: String,
    /// Replace the content with this text.
    #[serde(default)]
    write: Option<String>,
    /// Replace every occurrence of the first text with the second (it must occur).
    #[serde(default)]
    replace: Option<[String; 2]>,
    /// Append this text.
    #[serde(default)]
    append: Option<String>,
    /// Keep only the first N bytes.
    #[serde(default)]
    truncate: Option<u64>,
    /// Invert the byte at this offset.
    #[serde(default)]
    flip: Option<u64>,
    /// Delete the file (or folder).
    #[serde(default)]
    remove: bool,
}

/// A case ready to run: its name, where it was copied, and its recipe.
struct Case {
    name: String,
    dir: tempfile::TempDir,
    recipe: Recipe,
    /// The pipeline file the default command runs.
    pipeline: String,
    /// A single-file case: a pipeline that does not load; the cache must not be created.
    single_file: bool,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn broken_pipelines_fail_with_located_messages_and_touch_no_cache() {
    let only = std::env::var("ERRORS_CASE").unwrap_or_default();
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/errors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in names {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.contains(&only) {
            continue;
        }
        count += 1;
        let result = std::panic::catch_unwind(|| check(prepare(&path)));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!(
                "{name}: {}",
                msg.lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(count > 0, "no case matches ERRORS_CASE={only}");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Copies a case into a fresh temp dir and reads its recipe.
fn prepare(path: &Path) -> Case {
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    if path.is_dir() {
        copy_tree(path, dir.path());
        let recipe_path = path.join("case.yaml");
        let recipe: Recipe = match std::fs::read_to_string(&recipe_path) {
            Ok(text) => serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", recipe_path.display())),
            Err(_) => Recipe::default(),
        };
        Case {
            name,
            dir,
            recipe,
            pipeline: "pipeline.yaml".into(),
            single_file: false,
        }
    } else {
        std::fs::copy(path, dir.path().join(&name)).unwrap();
        Case {
            pipeline: name.clone(),
            name,
            dir,
            recipe: Recipe::default(),
            single_file: true,
        }
    }
}

/// Runs one case and checks everything the module doc promises.
fn check(case: Case) {
    let root = case.dir.path();
    let r = &case.recipe;
    for (dest, src) in &r.copy {
        let from = repo().join(src);
        let to = root.join(dest);
        if from.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {src}: {e}"));
        }
    }
    for (file, columns) in &r.parquet {
        write_parquet(&root.join(file), columns);
    }
    for args in &r.before {
        let out = cairn(&case, args, "executions.log");
        assert_eq!(
            out.status.code(),
            Some(0),
            "before-command {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for m in &r.mutate {
        mutate(root, m);
    }
    let holder = r.hold.as_ref().map(|args| {
        let child = cairn_command(&case, args, "hold.log")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::fs::read_to_string(root.join("hold.log"))
            .unwrap_or_default()
            .is_empty()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "hold: no stage started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    });

    let cache = root.join(r.cache_dir.as_deref().unwrap_or("cache"));
    let before = CacheState::read(&cache);
    let default_command = vec!["run".to_string(), case.pipeline.clone()];
    let command = r.command.as_ref().unwrap_or(&default_command);
    let out = cairn(&case, command, "executions.log");
    if let Some(mut child) = holder {
        assert!(
            child.wait().unwrap().success(),
            "hold: the holding command failed"
        );
    }
    let after = CacheState::read(&cache);
    let text = output_text(&out, root);
    let file = command.get(1).map(String::as_str).unwrap_or_default();

    assert!(
        matches!(out.status.code(), Some(c) if c != 0),
        "exit {:?}, expected a failure\n{text}",
        out.status.code()
    );
    for bad in ["panicked", "RUST_BACKTRACE", "internal error"] {
        assert!(!text.contains(bad), "`{bad}` in the output\n{text}");
    }
    match &r.stage {
        Some(stage) => assert!(
            names_failed_stage(&text, stage),
            "no FAILED line names stage `{stage}`\n{text}"
        ),
        None if r.names.is_empty() => assert!(
            names_location(&text, file),
            "no `--> {file}:line:col`\n{text}"
        ),
        None => {}
    }
    for want in &r.names {
        assert!(text.contains(want.as_str()), "`{want}` not named\n{text}");
    }
    if case.single_file || (out.status.code() == Some(2) && r.before.is_empty()) {
        assert!(
            !cache.exists(),
            "an invalid pipeline created the cache\n{text}"
        );
    }
    after.check_consistent();
    before.check_changes(&after, r.stage.as_deref());

    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_suffix(case.name.clone());
    settings.set_input_file(repo().join("tests/errors").join(&case.name));
    settings.set_prepend_module_to_snapshot(true);
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[DIGEST]");
    settings.add_filter(r"[ ]+\d+(\.\d+)?m?s\b", " [TIME]");
    settings.add_filter(r"\b\d+m\d\ds\b", "[TIME]");
    settings.bind(|| insta::assert_snapshot!(SNAPSHOT, text, "stderr"));
}

/// stderr, then stdout when there is any, with the case's temp dir written `[CASE]`.
fn output_text(out: &Output, root: &Path) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text.push_str("----- stdout -----\n");
        text.push_str(&stdout);
    }
    let mut roots = vec![root.display().to_string()];
    if let Ok(c) = root.canonicalize() {
        roots.insert(0, c.display().to_string());
    }
    for r in roots {
        text = text.replace(&r, "[CASE]");
    }
    text
}

/// `--> file:line:col` with numbers.
fn names_location(text: &str, file: &str) -> bool {
    let marker = format!("--> {file}:");
    text.match_indices(&marker).any(|(i, _)| {
        let rest = &text[i + marker.len()..];
        let mut parts = rest.splitn(2, ':');
        let line = parts.next().unwrap_or_default();
        let col: String = parts
            .next()
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && !col.is_empty()
    })
}

/// A line that says the stage failed: `FAILED <stage>: ...`, the summary row
/// `<stage>  FAILED ...`, or a diagnostic's `= stage: <stage>` under an error.
fn names_failed_stage(text: &str, stage: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        let words: Vec<&str> = l.split_whitespace().collect();
        l.starts_with(&format!("FAILED {stage}:"))
            || (words.len() >= 2 && words[0] == stage && words[1] == "FAILED")
            || l == format!("= stage: {stage}")
    })
}

fn cairn_command(case: &Case, args: &[String], log: &str) -> Command {
    let root = case.dir.path();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("--cache-dir")
        .arg(case.recipe.cache_dir.as_deref().unwrap_or("cache"))
        .args(args)
        .current_dir(root)
        .env("CAIRN_TEST_LOG", root.join(log))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", root.join(".hf-home"))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("CAIRN_CACHE_DIR")
        .env_remove("CAIRN_DEVICE")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE");
    cmd
}

fn cairn(case: &Case, args: &[String], log: &str) -> Output {
    cairn_command(case, args, log).output().unwrap()
}

fn mutate(root: &Path, m: &Mutation) {
    let actions = [
        m.write.is_some(),
        m.replace.is_some(),
        m.append.is_some(),
        m.truncate.is_some(),
        m.flip.is_some(),
        m.remove,
    ];
    assert_eq!(
        actions.iter().filter(|a| **a).count(),
        1,
        "mutate {}: give exactly one of write, replace, append, truncate, flip, remove",
        m.path
    );
    if !m.path.contains('*') {
        return mutate_one(&root.join(&m.path), m);
    }
    let mut paths = vec![root.to_path_buf()];
    for segment in m.path.split('/') {
        paths = paths
            .into_iter()
            .flat_map(|p| {
                let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| glob_match(segment, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect();
                found.sort();
                found
            })
            .collect();
    }
    assert!(!paths.is_empty(), "mutate {}: no file matches", m.path);
    for p in paths {
        mutate_one(&p, m);
    }
}

/// `*` matches any run of characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| {
                    name.is_char_boundary(head.len() + i)
                        && glob_match(tail, &name[head.len() + i..])
                })
        }
    }
}

fn mutate_one(path: &Path, m: &Mutation) {
    let path = path.to_path_buf();
    if let Some(text) = &m.write {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    if m.remove {
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", m.path));
        }
        return;
    }
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("mutate {}: {e}", m.path));
    if let Some(text) = &m.append {
        bytes.extend_from_slice(text.as_bytes());
    }
    if let Some([from, to]) = &m.replace {
        let text = String::from_utf8(bytes).expect("replace: a text file");
        assert!(
            text.contains(from.as_str()),
            "replace: `{from}` not in {}",
            m.path
        );
        bytes = text.replace(from.as_str(), to).into_bytes();
    }
    if let Some(n) = m.truncate {
        bytes.truncate(n as usize);
    }
    if let Some(at) = m.flip {
        bytes[at as usize] = !bytes[at as usize];
    }
    std::fs::write(&path, bytes).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let dest = to.join(item.file_name());
        if item.path().is_dir() {
            copy_tree(&item.path(), &dest);
        } else {
            std::fs::copy(item.path(), dest).unwrap();
        }
    }
}

/// Writes a Parquet file from a recipe's columns (see [`Recipe::parquet`]).
fn write_parquet(path: &Path, columns: &serde_yaml::Mapping) {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, values) in columns {
        let name = name.as_str().expect("column names are strings");
        let values = values.as_sequence().expect("a column is a list of values");
        let array: ArrayRef = if values.iter().all(Value::is_string) {
            Arc::new(StringArray::from_iter_values(
                values.iter().map(|v| v.as_str().unwrap()),
            ))
        } else if values.iter().all(|v| v.as_i64().is_some()) {
            Arc::new(Int64Array::from_iter_values(
                values.iter().map(|v| v.as_i64().unwrap()),
            ))
        } else if values.iter().all(Value::is_number) {
            Arc::new(Float64Array::from_iter_values(
                values.iter().map(|v| v.as_f64().unwrap()),
            ))
        } else {
            let rows: Vec<Vec<f32>> = values
                .iter()
                .map(|v| {
                    v.as_sequence()
                        .unwrap_or_else(|| panic!("column {name}: mixed value types"))
                        .iter()
                        .map(|x| x.as_f64().expect("lists of numbers") as f32)
                        .collect()
                })
                .collect();
            let width = rows[0].len();
            let flat = Float32Array::from_iter_values(rows.iter().flatten().copied());
            let item = Arc::new(Field::new("item", DataType::Float32, true));
            if rows.iter().all(|r| r.len() == width) {
                Arc::new(FixedSizeListArray::new(
                    item,
                    width as i32,
                    Arc::new(flat),
                    None,
                ))
            } else {
                let lengths = rows.iter().map(Vec::len);
                let offsets = arrow::buffer::OffsetBuffer::from_lengths(lengths);
                Arc::new(ListArray::new(item, offsets, Arc::new(flat), None))
            }
        };
        fields.push(Field::new(name, array.data_type().clone(), false));
        arrays.push(array);
    }
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = RecordBatch::try_new(schema, arrays).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, cairn::store::tables::to_parquet(&batch).unwrap()).unwrap();
}

/// What of a cache the checks look at.
struct CacheState {
    root: PathBuf,
    /// Manifest file name → bytes.
    manifests: BTreeMap<String, Vec<u8>>,
    /// Entry fingerprints.
    entries: BTreeSet<String>,
}

impl CacheState {
    fn read(root: &Path) -> CacheState {
        let files = |dir: &Path| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        let manifests = files(&root.join("manifests"))
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        let entries = files(&root.join("v1/entries"))
            .into_iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                Some(name.strip_suffix(".json")?.to_string())
            })
            .collect();
        CacheState {
            root: root.to_path_buf(),
            manifests,
            entries,
        }
    }

    /// No scratch left, and every object is what its name says.
    fn check_consistent(&self) {
        let tmp = self.root.join("v1/tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "scratch left in v1/tmp: {left:?}");
        let objects = self.root.join("v1/objects");
        for shard in std::fs::read_dir(&objects).into_iter().flatten().flatten() {
            for object in std::fs::read_dir(shard.path()).unwrap().flatten() {
                let name = format!(
                    "{}{}",
                    shard.file_name().to_string_lossy(),
                    object.file_name().to_string_lossy()
                );
                let bytes = std::fs::read(object.path()).unwrap();
                let digest = blake3::hash(&bytes).to_hex().to_string();
                assert_eq!(digest, name, "object {name} does not match its digest");
            }
        }
    }

    /// Entries added since `self` belong to recorded stages, never to `failed`; manifests are
    /// untouched but for records of stages that ran now.
    fn check_changes(&self, after: &CacheState, failed: Option<&str>) {
        let new: BTreeSet<&String> = after.entries.difference(&self.entries).collect();
        let mut recorded: BTreeMap<String, String> = BTreeMap::new(); // fingerprint → stage
        for (file, bytes) in &after.manifests {
            for (stage, fp) in records(file, bytes).unwrap_or_default() {
                recorded.insert(fp, stage);
            }
        }
        for fp in &new {
            match recorded.get(*fp) {
                None => panic!("entry {fp} was added, but no manifest records it"),
                Some(stage) => assert!(
                    Some(stage.as_str()) != failed,
                    "the failing stage {stage} has an entry"
                ),
            }
        }
        let names: BTreeSet<&String> = self
            .manifests
            .keys()
            .chain(after.manifests.keys())
            .collect();
        for file in names {
            let old = self.manifests.get(file);
            let now = after.manifests.get(file);
            if old == now {
                continue;
            }
            let Some(now) = now else {
                panic!("manifest {file} was deleted");
            };
            let old_records: BTreeMap<String, String> = old
                .and_then(|b| records(file, b))
                .unwrap_or_default()
                .into_iter()
                .collect();
            let now_records: BTreeMap<String, String> = records(file, now)
                .unwrap_or_else(|| panic!("manifest {file} is not a manifest after the command"))
                .into_iter()
                .collect();
            assert!(
                !now_records.is_empty(),
                "manifest {file} was written with no stage in it"
            );
            for (stage, fp) in &now_records {
                if old_records.get(stage) == Some(fp) {
                    continue;
                }
                assert!(
                    Some(stage.as_str()) != failed,
                    "manifest {file}: the failing stage {stage} got a record"
                );
                assert!(
                    new.contains(fp),
                    "manifest {file}: stage {stage} changed, but it did not run now"
                );
            }
            for stage in old_records.keys() {
                assert!(
                    now_records.contains_key(stage),
                    "manifest {file}: the record of {stage} was dropped"
                );
            }
        }
    }
}

/// A manifest's records as (stage, fingerprint); `None` when it is not a manifest (a case may
/// have damaged it on purpose).
fn records(_file: &str, bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let doc: Value = serde_yaml::from_slice(bytes).ok()?;
    let stages = doc.get("stages")?.as_mapping()?;
    let records = stages
        .iter()
        .map(|(id, rec)| {
            let fp = rec
                .get("fingerprint")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (id.as_str().unwrap_or_default().to_string(), fp.to_string())
        })
        .collect();
    Some(records)
}
