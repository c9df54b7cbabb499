//! The README's table of stage kinds is generated from the registry (`cairn kinds --markdown`):
//! this fails when the two differ, e.g. after a kind was added or its summary changed.

use std::process::Command;

const BEGIN: &str = "<!-- kinds:begin -->\n";
const END: &str = "<!-- kinds:end -->";

#[test]
fn the_readme_kinds_table_is_what_cairn_kinds_markdown_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["kinds", "--markdown"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README.md has no `<!-- kinds:begin -->` line")
        + BEGIN.len();
    let len = readme[start..]
        .find(END)
        .expect("README.md has no `<!-- kinds:end -->` line");
    assert!(
        readme[start..start + len] == generated,
        "README.md's kinds table differs from the registry. Replace the lines between \
         `<!-- kinds:begin -->` and `<!-- kinds:end -->` with the output of:\n    \
         cargo run -- kinds --markdown\nwhich prints:\n{generated}"
    );
}

#[test]
fn the_kinds_table_leaves_out_the_test_only_kinds() {
    // Tests build cairn with the `test-kinds` feature; users' builds never have those kinds.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["kinds", "--markdown"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| `load` | none |"), "{table}");
    assert!(!table.contains("test-"), "{table}");
}
