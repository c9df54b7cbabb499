//! The architecture, checked: the rules a newcomer can break without noticing, read from the
//! source with `syn` (so comments, strings and `#[cfg(test)]` code are told apart from code).
//!
//! - A kind (stages/src/kinds/) is a leaf: it imports shared modules, never another kind, and
//!   nothing but the registry reaches into a kind.
//! - The engine (src/) names no NLP concept: it decides whether and when a stage runs, never
//!   what a stage computes.
//! - No function outside test code is longer than 120 lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

const MAX_FUNCTION_LINES: usize = 120;

/// Words that belong to what stages compute, not to the engine.
const NLP_WORDS: &[&str] = &[
    "token",
    "bert",
    "vocab",
    "embedding",
    "entity",
    "entities",
    "sentence",
    "nlp",
    "transformer",
    "seqeval",
    "logit",
    "tweet",
    "emotion",
    "wikiann",
    "umap",
    "finetune",
    "fine-tune",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap();
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// `#[cfg(test)]`, `#[test]` or a `tests` module: code that only tests compile.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg")
                && a.parse_args::<syn::Meta>()
                    .is_ok_and(|m| m.path().is_ident("test")))
    })
}

/// Walks the non-test code of a file.
struct NonTest<'a, F: FnMut(Event<'_>)> {
    on: &'a mut F,
    /// Walk test code too (imports are checked everywhere, lengths outside tests only).
    with_tests: bool,
}

enum Event<'a> {
    Function {
        name: String,
        lines: usize,
        line: usize,
    },
    Path(Vec<String>),
    Ident(&'a proc_macro2::Ident),
    Str(String, usize),
}

impl<F: FnMut(Event<'_>)> NonTest<'_, F> {
    fn function(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let (start, end) = (span.start().line, span.end().line);
        (self.on)(Event::Function {
            name: name.to_string(),
            lines: end - start + 1,
            line: start,
        });
    }
}

impl<'ast, F: FnMut(Event<'_>)> Visit<'ast> for NonTest<'_, F> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if self.with_tests || (!is_test_only(&m.attrs) && m.ident != "tests") {
            syn::visit::visit_item_mod(self, m);
        }
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let test = is_test_only(&f.attrs);
        if !test {
            self.function(&f.sig.ident, f.span());
        }
        if !test || self.with_tests {
            syn::visit::visit_item_fn(self, f);
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            self.function(&f.sig.ident, f.span());
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.function(&f.sig.ident, f.span());
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if self.with_tests || !is_test_only(&i.attrs) {
            syn::visit::visit_item_impl(self, i);
        }
    }
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {
        // Doc comments and attributes are prose and configuration, not code.
    }
    fn visit_use_tree(&mut self, tree: &'ast syn::UseTree) {
        let mut prefix = Vec::new();
        use_paths(tree, &mut prefix, &mut |p| (self.on)(Event::Path(p)));
        syn::visit::visit_use_tree(self, tree);
    }
    fn visit_path(&mut self, path: &'ast syn::Path) {
        (self.on)(Event::Path(
            path.segments.iter().map(|s| s.ident.to_string()).collect(),
        ));
        syn::visit::visit_path(self, path);
    }
    fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
        (self.on)(Event::Ident(ident));
    }
    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        (self.on)(Event::Str(s.value(), s.span().start().line));
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // format!/bail!/... : their string literals are user-facing text of the engine.
        for tt in m.tokens.clone() {
            if let proc_macro2::TokenTree::Literal(l) = tt
                && let Ok(s) = syn::parse_str::<syn::LitStr>(&l.to_string())
            {
                (self.on)(Event::Str(s.value(), l.span().start().line));
            }
        }
        syn::visit::visit_macro(self, m);
    }
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut dyn FnMut(Vec<String>)) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut p = prefix.clone();
            p.push(n.ident.to_string());
            out(p);
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            p.push(r.ident.to_string());
            out(p);
        }
        syn::UseTree::Glob(_) => out(prefix.clone()),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

fn walk(path: &Path, on: impl FnMut(Event<'_>)) {
    walk_with(path, false, on)
}

fn walk_with(path: &Path, with_tests: bool, mut on: impl FnMut(Event<'_>)) {
    let file = parse(path);
    NonTest {
        on: &mut on,
        with_tests,
    }
    .visit_file(&file);
}

/// The kinds: one per file or folder directly under stages/src/kinds/.
fn kind_names() -> BTreeSet<String> {
    std::fs::read_dir(root().join("stages/src/kinds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_stem().is_some_and(|s| s != "mod"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect()
}

/// Which kind a file under stages/src/kinds/ belongs to (`load/csv.rs` → `load`).
fn kind_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root().join("stages/src/kinds")).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "mod").then_some(name)
}

#[test]
fn no_kind_imports_another_kind_and_only_the_registry_reaches_into_kinds() {
    let kinds = kind_names();
    assert!(kinds.contains("load") && kinds.len() > 5, "{kinds:?}");
    let mut problems = Vec::new();
    let files = rust_files(&root().join("stages/src"))
        .into_iter()
        .chain(rust_files(&root().join("src")));
    for path in files {
        let own = kind_of(&path);
        let is_registry = path.ends_with("stages/src/registry.rs");
        let is_kinds_mod = path.ends_with("stages/src/kinds/mod.rs");
        walk_with(&path, true, |e| {
            let Event::Path(segments) = e else { return };
            // `…::kinds::<kind>` anywhere, or `super::<kind>` from a kind's own file.
            let named = segments
                .windows(2)
                .find(|w| w[0] == "kinds" && kinds.contains(&w[1]))
                .map(|w| w[1].clone())
                .or_else(|| {
                    (own.is_some() && segments.len() > 1 && segments[0] == "super")
                        .then(|| segments[1].clone())
                        .filter(|k| kinds.contains(k) && path.parent().unwrap().ends_with("kinds"))
                });
            let Some(kind) = named else { return };
            // A kind's own files reach each other with `super::`, never through `kinds::`.
            let by_super = segments[0] == "super";
            let allowed =
                is_registry || is_kinds_mod || (by_super && own.as_deref() == Some(&kind));
            if !allowed {
                problems.push(format!(
                    "{}: reaches into kind `{kind}` ({})",
                    shown(&path),
                    segments.join("::")
                ));
            }
        });
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "kinds must be leaves:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_engine_names_no_nlp_concept() {
    let mut problems = Vec::new();
    for path in rust_files(&root().join("src")) {
        walk(&path, |e| {
            let (text, line) = match e {
                Event::Ident(i) => (i.to_string(), i.span().start().line),
                Event::Str(s, line) => (s, line),
                _ => return,
            };
            let lower = text.to_lowercase();
            for word in NLP_WORDS {
                if lower.contains(word) {
                    problems.push(format!("{}:{line}: `{word}` in {text:?}", shown(&path)));
                }
            }
        });
    }
    assert!(
        problems.is_empty(),
        "src/ decides whether and when a stage runs, not what it computes:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_function_outside_tests_is_longer_than_120_lines() {
    let mut long = Vec::new();
    let files = rust_files(&root().join("src"))
        .into_iter()
        .chain(rust_files(&root().join("stages/src")));
    for path in files {
        walk(&path, |e| {
            if let Event::Function { name, lines, line } = e
                && lines > MAX_FUNCTION_LINES
            {
                long.push(format!(
                    "{}:{line}: `{name}` is {lines} lines",
                    shown(&path)
                ));
            }
        });
    }
    assert!(
        long.is_empty(),
        "split these into steps that read as a recipe (at most {MAX_FUNCTION_LINES} lines):\n{}",
        long.join("\n")
    );
}
