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

/// The tiny random BERT with a word-level tokenizer, in `dir` of the project (see
/// `cairn_stages::fixtures::write_tiny_bert`).
pub fn write_tiny_bert(p: &Project, dir: &str, extra: &[(&str, u32)]) {
    cairn_stages::fixtures::write_tiny_bert(&p.path(dir), extra);
}

/// A xorshift stream of numbers below `m`, for deterministic toy data.
pub fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move |m| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    }
}

/// `n` lines `text;label` of a learnable toy task for the tiny BERT's word-level vocabulary:
/// `high` when every word is ≥ w60, `other` otherwise.
pub fn toy_lines(n: usize, seed: u64) -> String {
    let mut below = xorshift(seed);
    let mut out = String::new();
    for _ in 0..n {
        let high = below(2) == 1;
        let len = 2 + below(10);
        let (lo, span) = if high { (60, 40) } else { (4, 56) };
        let words: Vec<String> = (0..len).map(|_| format!("w{}", lo + below(span))).collect();
        let label = if high { "high" } else { "other" };
        out.push_str(&format!("{};{label}\n", words.join(" ")));
    }
    out
}
