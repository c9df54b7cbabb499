//! Runs the real `cairn` binary on pipelines written into a fresh temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "cairn failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("CAIRN_TEST_LOG", self.path("executions.log"))
            .env_remove("CAIRN_CACHE_DIR")
            .env_remove("CAIRN_DEVICE")
            .env_remove("RUST_LOG");
        cmd
    }

    pub fn cairn(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run cairn"))
    }

    /// Stage ids that executed since the last call, sorted.
    pub fn executions(&self) -> Vec<String> {
        let log = self.path("executions.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let mut v: Vec<String> = text.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    /// Every object file in the default cache.
    pub fn objects(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.path("cache/v1/objects"), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(items) = std::fs::read_dir(dir) {
        for item in items.flatten() {
            let p = item.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The tiny random BERT fixture (vocabulary 100, 64 positions) with a word-level tokenizer over
/// its ids, written into `dir` of the project: `[PAD]` `[UNK]` `[CLS]` `[SEP]`, `w4` … `w99`,
/// plus `extra` (word, id) entries (an id ≥ 100 is beyond the model's vocabulary).
pub fn write_tiny_bert(p: &Project, dir: &str, extra: &[(&str, u32)]) {
    use serde_json::json;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoders/bert");
    std::fs::create_dir_all(p.path(dir)).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), p.path(dir).join(f)).unwrap();
    }
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
    let mut vocab = serde_json::Map::new();
    for (i, s) in specials.iter().enumerate() {
        vocab.insert(s.to_string(), json!(i));
    }
    for i in 4..100 {
        vocab.insert(format!("w{i}"), json!(i));
    }
    for (word, id) in extra {
        vocab.insert(word.to_string(), json!(id));
    }
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    p.write(&format!("{dir}/tokenizer.json"), &tokenizer.to_string());
}
