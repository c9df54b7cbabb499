#![no_main]
//! The pipeline parser: YAML text → `SourceFile::parse` → `resolve` → a `Pipeline` or located
//! diagnostics (printed, as `cairn` prints them). Any input must end in one or the other.

use std::path::PathBuf;
use std::sync::OnceLock;

use cairn::spec::resolve::resolve;
use cairn::spec::yaml::SourceFile;

/// `<tmp>/pipelines/fuzz.yaml`, with a small `<tmp>/data/` so seeds written like the real
/// pipelines (`root: ..`, `data/emotion/train.txt`) resolve past the file checks.
fn pipeline_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = tempfile::tempdir().expect("tempdir").keep();
        for (file, text) in [
            (
                "data/emotion/train.txt",
                "i feel fine;joy\ni am sad;sadness\n",
            ),
            ("data/emotion/validation.txt", "so glad;joy\n"),
            ("data/emotion/test.txt", "down;sadness\n"),
            ("data/wikiann/en/train", "en:John\tB-PER\nen:runs\tO\n"),
            ("data/wikiann/en/dev", "en:Paris\tB-LOC\n"),
            ("data/wikiann/en/test", "en:IBM\tB-ORG\n"),
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::create_dir_all(root.join("pipelines")).unwrap();
        root.join("pipelines/fuzz.yaml")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let result = SourceFile::parse(pipeline_path(), &text).and_then(|s| resolve(&s, true));
    match result {
        Ok(p) => {
            let _ = p.stages.len();
        }
        Err(d) => {
            let _ = d.to_string();
        }
    }
});
