//! Content digests and stage fingerprints.
//!
//! A fingerprint is blake3 over canonical JSON (sorted keys, shortest float form) of what a
//! stage's result depends on: its kind and implementation version, its params, and the content
//! digests of its inputs. Never `std::hash::Hash`: fingerprints must be equal across machines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::atomic::write_atomic_via;

/// Bump to invalidate every fingerprint (changes to what goes into them or how).
pub const SCHEME: u32 = 1;

/// A blake3 digest as 64 hex characters.
pub type Digest = String;

pub fn digest_bytes(bytes: &[u8]) -> Digest {
    blake3::hash(bytes).to_hex().to_string()
}

/// The canonical bytes of a JSON value: keys sorted at every level, no whitespace. Floats use
/// serde_json's shortest round-trip form, so `1e-5` and `0.00001` are the same bytes.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // Serialize a BTreeMap-ordered tree explicitly, whatever serde_json's map features are.
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, &Value> = map.iter().collect();
                out.push(b'{');
                for (i, (k, v)) in ordered.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).expect("string"));
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => out.extend(i.to_string().as_bytes()),
                (_, Some(u), _) => out.extend(u.to_string().as_bytes()),
                // An integral float hashes like the integer: `1.0` and `1` are one value.
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                    out.extend((f as i64).to_string().as_bytes())
                }
                _ => out.extend(serde_json::to_vec(v).expect("number")),
            },
            other => out.extend(serde_json::to_vec(other).expect("scalar")),
        }
    }
    let mut out = Vec::new();
    write(&sorted(value), &mut out);
    out
}

pub fn digest_json(value: &Value) -> Digest {
    digest_bytes(&canonical_bytes(value))
}

/// What a stage's fingerprint covers.
#[derive(Serialize)]
pub struct FingerprintInputs<'a> {
    pub scheme: u32,
    pub kind: &'a str,
    pub version: u32,
    pub params: &'a Value,
    /// Upstream output digests, in declared input order (with the split, when one is selected).
    pub inputs: Vec<(Option<&'a str>, &'a str)>,
    /// For a kind that names its inputs: the name each of `inputs` fills, so that swapping two
    /// inputs changes the fingerprint. Absent for list inputs (their fingerprints are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<&'a str>>,
    /// The sweep values of each of `inputs` (empty for a stage that is not a sweep's cell),
    /// which a kind may read. Absent when no input is a cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Vec<&'a BTreeMap<String, String>>>,
    /// For a kind that reads its inputs' metrics: the digest of each input's metrics. Absent
    /// for every other kind (their fingerprints are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Digest>>,
    /// External file/directory digests by the param that names them.
    pub externals: BTreeMap<&'a str, &'a str>,
    /// `cuda` for a device stage run on a GPU, whose arithmetic differs from the CPU's in the
    /// last bits. Absent on the CPU (CPU fingerprints are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<&'static str>,
}

impl FingerprintInputs<'_> {
    pub fn fingerprint(&self) -> Digest {
        digest_json(&serde_json::to_value(self).expect("fingerprint inputs serialize"))
    }
}

/// Remembers the digest of files by (size, mtime, inode), so unchanged large files (model
/// weights, a 1 GiB corpus) are not read again.
#[derive(Default, Serialize, Deserialize)]
pub struct StatCache {
    entries: BTreeMap<PathBuf, StatEntry>,
    #[serde(skip)]
    dirty: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    digest: Digest,
    /// When the file was hashed: a file modified within the same clock tick as it was hashed
    /// could change without its mtime moving, so such entries are not trusted (git's "racy" rule).
    hashed_ns: i128,
}

/// Files changed this close to being hashed are hashed again next time.
const RACY_NS: i128 = 1_000_000_000;

fn stat_key(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    use std::os::unix::fs::MetadataExt;
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    (meta.len(), mtime_ns, meta.ino())
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl StatCache {
    /// The stat cache at `path`; with `rehash`, an empty one, so that every input file, model
    /// file and cached object is hashed by content this time (`--rehash`: a file changed in
    /// place with its mtime restored fools size + mtime + inode). The fresh digests are saved.
    pub fn open(path: &Path, rehash: bool) -> StatCache {
        if rehash {
            StatCache {
                dirty: true,
                ..StatCache::default()
            }
        } else {
            StatCache::load(path)
        }
    }

    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&mut self, path: &Path, scratch: &Path) -> std::io::Result<()> {
        if self.dirty {
            write_atomic_via(
                scratch,
                path,
                &serde_json::to_vec(self).expect("stat cache serializes"),
            )?;
            self.dirty = false;
        }
        Ok(())
    }

    /// The digest of a file's content, from the cache when its stat is unchanged.
    pub fn file_digest(&mut self, path: &Path) -> std::io::Result<Digest> {
        let abs = std::path::absolute(path)?;
        let meta = fs_err::metadata(&abs)?;
        let (size, mtime_ns, inode) = stat_key(&meta);
        if let Some(e) = self.entries.get(&abs)
            && e.size == size
            && e.mtime_ns == mtime_ns
            && e.inode == inode
            && e.hashed_ns - e.mtime_ns > RACY_NS
        {
            return Ok(e.digest.clone());
        }
        let hashed_ns = now_ns();
        tracing::debug!(path = %abs.display(), bytes = size, "hashing");
        let digest = hash_file(&abs)?;
        self.entries.insert(
            abs,
            StatEntry {
                size,
                mtime_ns,
                inode,
                digest: digest.clone(),
                hashed_ns,
            },
        );
        self.dirty = true;
        Ok(digest)
    }

    /// A directory's digest: over the sorted relative paths and digests of all files in it
    /// (symlinks followed, as in Hugging Face snapshot directories).
    pub fn dir_digest(&mut self, dir: &Path) -> std::io::Result<Digest> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();
        let mut listing = Vec::new();
        for rel in files {
            let digest = self.file_digest(&dir.join(&rel))?;
            listing.push(Value::from(vec![Value::from(rel), Value::from(digest)]));
        }
        Ok(digest_json(&Value::Array(listing)))
    }

    pub fn digest(&mut self, path: &Path) -> std::io::Result<Digest> {
        if fs_err::metadata(path)?.is_dir() {
            self.dir_digest(path)
        } else {
            self.file_digest(path)
        }
    }

    /// An external's digest: with `files`, over just those files of the directory `path` (in
    /// the same form as [`StatCache::dir_digest`], so listing every file gives the same digest);
    /// a listed file that is missing is an error naming it. Without, [`StatCache::digest`].
    pub fn external_digest(
        &mut self,
        path: &Path,
        files: Option<&[String]>,
    ) -> std::io::Result<Digest> {
        let Some(files) = files else {
            return self.digest(path);
        };
        let mut files = files.to_vec();
        files.sort();
        files.dedup();
        let mut listing = Vec::new();
        for rel in files {
            let file = path.join(&rel);
            if !file.is_file() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{rel} is missing from {}", path.display()),
                ));
            }
            let digest = self.file_digest(&file)?;
            listing.push(Value::from(vec![Value::from(rel), Value::from(digest)]));
        }
        Ok(digest_json(&Value::Array(listing)))
    }

    /// Forgets files that no longer exist (keeps the cache file small).
    pub fn prune(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|p, _| p.exists());
        self.dirty |= before != self.entries.len();
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if fs_err::metadata(&path)?.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("inside root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

pub fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap(path)?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_and_float_spelling() {
        let a: Value = serde_yaml::from_str("{b: 1e-5, a: [1, 2.0]}").unwrap();
        let b: Value = serde_yaml::from_str("{a: [1, 2], b: 0.00001}").unwrap();
        assert_eq!(canonical_bytes(&a), canonical_bytes(&b));
        assert_eq!(canonical_bytes(&a), br#"{"a":[1,2],"b":0.00001}"#.to_vec());
        assert_ne!(
            digest_json(&json!({"c": 1.0})),
            digest_json(&json!({"c": 1.5}))
        );
    }

    /// Named inputs, sweeps and GPU runs came later: a stage without them must keep the
    /// fingerprint it had, or every checked-in manifest would go stale; with them it differs.
    #[test]
    fn list_inputs_hash_as_before_named_inputs_and_sweeps_existed() {
        let params = json!({"add": 1});
        let written_before = json!({
            "scheme": 1, "kind": "test-map", "version": 1, "params": {"add": 1},
            "inputs": [[null, "d1"], ["train", "d2"]], "externals": {"file": "d3"},
        });
        let cell = BTreeMap::from([("n".to_string(), "250".to_string())]);
        let none = BTreeMap::new();
        let inputs = |slots, matrix| FingerprintInputs {
            device: None,
            scheme: SCHEME,
            kind: "test-map",
            version: 1,
            params: &params,
            inputs: vec![(None, "d1"), (Some("train"), "d2")],
            slots,
            matrix,
            metrics: None,
            externals: BTreeMap::from([("file", "d3")]),
        };
        let list = inputs(None, None).fingerprint();
        assert_eq!(list, digest_json(&written_before));
        let named = inputs(Some(vec!["model", "data"]), None).fingerprint();
        let swapped = inputs(Some(vec!["data", "model"]), None).fingerprint();
        let from_a_cell = inputs(None, Some(vec![&cell, &none])).fingerprint();
        let on_a_gpu = FingerprintInputs {
            device: Some("cuda"),
            ..inputs(None, None)
        }
        .fingerprint();
        let all = [&list, &named, &swapped, &from_a_cell, &on_a_gpu];
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }

    #[test]
    fn listed_files_digest_ignores_the_rest_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("README.md"), "# m").unwrap();
        let mut cache = StatCache::default();
        let files = ["config.json".to_string()];
        let only = cache.external_digest(dir.path(), Some(&files)).unwrap();
        std::fs::write(dir.path().join("README.md"), "# m, edited").unwrap();
        assert_eq!(
            cache.external_digest(dir.path(), Some(&files)).unwrap(),
            only
        );
        let all = ["README.md".to_string(), "config.json".to_string()];
        assert_eq!(
            cache.external_digest(dir.path(), Some(&all)).unwrap(),
            cache.dir_digest(dir.path()).unwrap()
        );
        let missing = ["model.safetensors".to_string()];
        let err = cache
            .external_digest(dir.path(), Some(&missing))
            .unwrap_err();
        assert!(
            err.to_string().contains("model.safetensors is missing"),
            "{err}"
        );
    }

    #[test]
    fn stat_cache_rehashes_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, "one").unwrap();
        let mut cache = StatCache::default();
        let d1 = cache.file_digest(&f).unwrap();
        std::fs::write(&f, "two").unwrap();
        let d2 = cache.file_digest(&f).unwrap();
        assert_ne!(d1, d2);
        assert_eq!(d2, digest_bytes(b"two"));
    }
}
