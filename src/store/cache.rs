//! The content-addressed store: objects (stage outputs, by blake3 of their bytes) and entries
//! (which objects a fingerprint produced). Layout, versioned so a future change can coexist:
//!
//! ```text
//! <cache>/manifests/<pipeline>.yaml   checked in
//! <cache>/v1/objects/ab/cdef…          output bytes (Parquet tables, files)
//! <cache>/v1/entries/<fingerprint>.json
//! <cache>/v1/tmp/                       scratch for running stages, emptied under the lock
//! <cache>/v1/stat-cache.json, lock
//! ```
//!
//! Objects are written before the entry that names them, each atomically, so a crash at any
//! moment leaves at worst unreferenced objects (removed by `cairn gc`), never a half entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::plan::fingerprint::{Digest, StatCache, digest_bytes, hash_file};
use crate::store::atomic::{persist_file, write_atomic_via};

const LAYOUT: &str = "v1";

/// One output of a stage, as recorded in entries and manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutputRecord {
    pub digest: Digest,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// What one fingerprint produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    pub fingerprint: Digest,
    /// `tables/<split>.parquet` and `files/<relative path>`.
    pub outputs: BTreeMap<String, OutputRecord>,
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub wall_time_s: f64,
    /// How the run went (timing, throughput): for people, never compared.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_facts: BTreeMap<String, serde_json::Value>,
}

pub const TABLE_PREFIX: &str = "tables/";
pub const FILE_PREFIX: &str = "files/";

pub fn table_output_name(split: &str) -> String {
    format!("{TABLE_PREFIX}{split}.parquet")
}

/// The split a table output holds, if it is one.
pub fn split_of(output: &str) -> Option<&str> {
    output.strip_prefix(TABLE_PREFIX)?.strip_suffix(".parquet")
}

/// An entry as stored: its content and the blake3 of that content's compact JSON, so an
/// edited entry (a metric changed by hand, an output swapped) is detected, never served.
#[derive(Serialize, Deserialize)]
struct SealedEntry {
    entry: Entry,
    blake3: Digest,
}

fn seal(entry: &Entry) -> Digest {
    digest_bytes(&serde_json::to_vec(entry).expect("entry serializes"))
}

/// What is wrong with a cached result.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    /// The named output's object is not in the store.
    Missing(String),
    /// The named output's object does not match its digest.
    Corrupt(String),
    /// The entry itself fails its integrity check (why).
    BadEntry(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Missing(o) => write!(f, "output missing: {o}"),
            Damage::Corrupt(o) => write!(f, "output corrupt: {o} fails its digest check"),
            Damage::BadEntry(why) => write!(f, "cache entry corrupt: {why}"),
        }
    }
}

pub struct Cache {
    root: PathBuf,
    layout: PathBuf,
}

impl Cache {
    pub fn new(root: &Path) -> Cache {
        Cache {
            root: root.to_path_buf(),
            layout: root.join(LAYOUT),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest_path(&self, pipeline: &str) -> PathBuf {
        self.root.join("manifests").join(format!("{pipeline}.yaml"))
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    pub fn stat_cache_path(&self) -> PathBuf {
        self.layout.join("stat-cache.json")
    }

    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.layout
            .join("objects")
            .join(&digest[..2])
            .join(&digest[2..])
    }

    fn entry_path(&self, fingerprint: &str) -> PathBuf {
        self.layout
            .join("entries")
            .join(format!("{fingerprint}.json"))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.layout.join("tmp")
    }

    /// A cache directory that is not ours is refused rather than written into.
    pub fn ensure_layout(&self) -> std::io::Result<()> {
        for d in ["objects", "entries", "tmp"] {
            fs_err::create_dir_all(self.layout.join(d))?;
        }
        let ignore = self.root.join(".gitignore");
        if !ignore.exists() {
            // Only manifests are meant for version control.
            self.write(&ignore, b"# written by cairn: only manifests are checked in\n/*\n!/manifests/\n!/.gitignore\n")?;
        }
        Ok(())
    }

    /// The entry of a fingerprint: `Ok(None)` when there is none, an error when the file is
    /// unreadable or its content does not match the digest written beside it (edited, or
    /// written by a cairn before entries carried one). With `remove_bad`, such a file is deleted
    /// so the stage is recomputed, as a corrupt object is.
    pub fn read_entry(&self, fingerprint: &str, remove_bad: bool) -> Result<Option<Entry>, Damage> {
        let path = self.entry_path(fingerprint);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Damage::BadEntry(format!("entry unreadable: {e}"))),
        };
        let checked = match serde_json::from_slice::<SealedEntry>(&bytes) {
            Err(_) => Err("entry is not a sealed cairn entry (edited, or from an older cairn)"),
            Ok(sealed) if sealed.entry.fingerprint != fingerprint => {
                Err("entry names another fingerprint")
            }
            Ok(sealed) if seal(&sealed.entry) != sealed.blake3 => {
                Err("entry content does not match its digest (edited?)")
            }
            Ok(sealed) => Ok(sealed.entry),
        };
        match checked {
            Ok(entry) => Ok(Some(entry)),
            Err(why) => {
                if remove_bad {
                    let _ = std::fs::remove_file(&path);
                }
                Err(Damage::BadEntry(why.to_string()))
            }
        }
    }

    /// Writes an entry sealed with the digest of its content.
    pub fn write_entry(&self, entry: &Entry) -> std::io::Result<()> {
        let sealed = SealedEntry {
            blake3: seal(entry),
            entry: entry.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&sealed).expect("entry serializes");
        self.write(&self.entry_path(&entry.fingerprint), &bytes)
    }

    /// Writes a file of the cache atomically, its temp file in the cache's scratch directory.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic_via(&self.tmp_dir(), path, bytes)
    }

    /// Stores bytes as an object; returns its digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> std::io::Result<Digest> {
        let digest = digest_bytes(bytes);
        let path = self.object_path(&digest);
        if !path.exists() {
            self.write(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Moves a finished file (inside the cache's tmp dir) into the store; returns its digest.
    pub fn put_file(&self, file: &Path) -> std::io::Result<Digest> {
        let digest = hash_file(file)?;
        let path = self.object_path(&digest);
        if path.exists() {
            fs_err::remove_file(file)?;
        } else {
            persist_file(file, &path)?;
        }
        Ok(digest)
    }

    /// Reads an object and checks its digest. A corrupt object is deleted so it is recomputed.
    pub fn read_verified(&self, digest: &str) -> Result<Vec<u8>, Damage> {
        let path = self.object_path(digest);
        let bytes = std::fs::read(&path).map_err(|_| Damage::Missing(digest.to_string()))?;
        if digest_bytes(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            return Err(Damage::Corrupt(digest.to_string()));
        }
        Ok(bytes)
    }

    /// The path of an object whose content was just checked against its digest. A corrupt
    /// object is deleted so it is recomputed.
    pub fn verified_object_path(&self, digest: &str) -> Result<PathBuf, Damage> {
        let path = self.object_path(digest);
        match hash_file(&path) {
            Err(_) => Err(Damage::Missing(digest.to_string())),
            Ok(d) if d != digest => {
                let _ = std::fs::remove_file(&path);
                Err(Damage::Corrupt(digest.to_string()))
            }
            Ok(_) => Ok(path),
        }
    }

    /// Checks every object of an entry: cheap by stat when it was verified before, by content
    /// otherwise. With `remove_corrupt`, a corrupt object is deleted so a rerun can replace it.
    pub fn check(
        &self,
        entry: &Entry,
        stats: &mut StatCache,
        remove_corrupt: bool,
    ) -> Result<(), Damage> {
        for (name, out) in &entry.outputs {
            let path = self.object_path(&out.digest);
            if !path.exists() {
                return Err(Damage::Missing(name.clone()));
            }
            match stats.file_digest(&path) {
                Ok(d) if d == out.digest => {}
                _ => {
                    if remove_corrupt {
                        let _ = std::fs::remove_file(&path);
                    }
                    return Err(Damage::Corrupt(name.clone()));
                }
            }
        }
        Ok(())
    }

    /// Takes the cache's write lock, waiting up to `timeout` for another cairn to finish.
    pub fn lock(&self, timeout: Duration) -> anyhow::Result<CacheLock> {
        self.ensure_layout()?;
        let path = self.layout.join("lock");
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?
            .into_parts()
            .0;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told {
                        eprintln!(
                            "waiting for another cairn process using the cache {} (--lock-timeout {}s)",
                            self.root.display(),
                            timeout.as_secs()
                        );
                        told = true;
                    }
                    if start.elapsed() >= timeout {
                        anyhow::bail!(
                            "gave up after {}s waiting for the lock on {}: another cairn is using this cache",
                            timeout.as_secs(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        // Scratch left by a killed run is garbage now that we hold the lock.
        let tmp = self.tmp_dir();
        if let Ok(items) = std::fs::read_dir(&tmp) {
            for item in items.flatten() {
                let p = item.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        Ok(CacheLock { _file: file })
    }

    /// Every entry (fingerprint, file) and object (digest, file, bytes) in the store.
    pub fn inventory(&self) -> std::io::Result<(Vec<StoredEntryFile>, Vec<StoredObject>)> {
        let mut entries = Vec::new();
        if let Ok(items) = std::fs::read_dir(self.layout.join("entries")) {
            for item in items.flatten() {
                let p = item.path();
                if let Some(fp) = p.file_stem().and_then(|s| s.to_str()) {
                    entries.push((fp.to_string(), p.clone()));
                }
            }
        }
        let mut objects = Vec::new();
        if let Ok(prefixes) = std::fs::read_dir(self.layout.join("objects")) {
            for prefix in prefixes.flatten() {
                let pre = prefix.file_name().to_string_lossy().to_string();
                for item in std::fs::read_dir(prefix.path())?.flatten() {
                    let rest = item.file_name().to_string_lossy().to_string();
                    let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
                    objects.push((format!("{pre}{rest}"), item.path(), bytes));
                }
            }
        }
        Ok((entries, objects))
    }
}

/// An entry file: its fingerprint and path.
pub type StoredEntryFile = (Digest, PathBuf);

/// An object file: its digest, path and size.
pub type StoredObject = (Digest, PathBuf, u64);

/// Held while a run writes to the cache; released on drop (and by the OS if we are killed).
pub struct CacheLock {
    _file: std::fs::File,
}
