//! The stages of `sensor-user/src` import each other only as ARCHITECTURE.md's table of
//! the import order allows, and no module takes part in an import circle. The table is
//! read from ARCHITECTURE.md itself, so the document and the code cannot drift apart:
//! an import the table does not allow fails here with its file and line.
//!
//! Test code (`#[cfg(test)]` items, `tests.rs` and `testdata.rs` files) may assemble
//! fixtures from any stage and is not checked.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use syn::visit::Visit;

/// A reference from one module to another: where, and to what module path.
#[derive(Debug)]
struct Import {
    line: usize,
    target: Vec<String>,
}

fn src() -> PathBuf {
    kettlewatch_tests::env::workspace().join("sensor-user/src")
}

/// The module path of a file under `src` (`engine/sensor/record.rs` is
/// `engine::sensor::record`, a `mod.rs` its folder's).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_test_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Collects every `crate::` and `super::` path of a file, resolved to module paths.
struct Collector {
    module: Vec<String>,
    found: Vec<Import>,
}

impl Collector {
    fn resolve(&mut self, segments: &[String], line: usize) {
        let mut target: Vec<String> = match segments.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") => self.module.clone(),
            _ => return,
        };
        let mut rest = segments;
        if rest[0] == "crate" {
            rest = &rest[1..];
        }
        while rest.first().is_some_and(|s| s == "super") {
            target.pop();
            rest = &rest[1..];
        }
        target.extend(rest.iter().cloned());
        self.found.push(Import { line, target });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, line);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.resolve(&full, line);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.resolve(&full, line);
            }
            syn::UseTree::Glob(_) => self.resolve(&prefix.clone(), line),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, line);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = match i {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            _ => return syn::visit::visit_item(self, i),
        };
        if !is_test_attr(attrs) {
            syn::visit::visit_item(self, i);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let line = u.use_token.span.start().line;
        self.use_tree(&mut Vec::new(), &u.tree, line);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        self.resolve(&segments, line);
        syn::visit::visit_path(self, p);
    }
}

/// The import-order table of ARCHITECTURE.md: each stage and the stages it may import.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(kettlewatch_tests::env::workspace().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("The import order"))
        .expect("ARCHITECTURE.md has a section \"The import order\"");
    let mut table = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names = |cell: &str| -> BTreeSet<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        for stage in names(cells[1]) {
            table.insert(stage, names(cells[2]));
        }
    }
    assert!(
        table.len() > 5,
        "the import-order table did not parse: {table:?}"
    );
    table
}

/// Every non-test file's imports, by module path.
fn imports() -> BTreeMap<Vec<String>, (PathBuf, Vec<Import>)> {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut out = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&root).expect("under src").to_path_buf();
        let name = rel
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        // The binary's root is its own crate; tests assemble from anywhere.
        if name == "main.rs" || name == "tests.rs" || name == "testdata.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        let mut c = Collector {
            module: module_of(&rel),
            found: Vec::new(),
        };
        c.visit_file(&file);
        out.insert(module_of(&rel), (rel, c.found));
    }
    out
}

#[test]
fn no_stage_imports_one_the_table_does_not_allow() {
    let table = allowed();
    let mut wrong = Vec::new();
    for (module, (rel, found)) in imports() {
        let Some(stage) = module.first() else {
            continue;
        };
        let may = table.get(stage).unwrap_or_else(|| {
            panic!(
                "stage {stage} ({}) is not in ARCHITECTURE.md's import-order table",
                rel.display()
            )
        });
        for i in found {
            let Some(to) = i.target.first() else {
                continue;
            };
            if to != stage && table.contains_key(to) && !may.contains(to) {
                wrong.push(format!(
                    "{}:{}: {stage} imports {}",
                    rel.display(),
                    i.line,
                    i.target.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports ARCHITECTURE.md's import order does not allow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_table_itself_has_no_circle() {
    let table = allowed();
    // Depth-first: a stage reached again on its own path is a circle.
    fn visit(
        s: &str,
        table: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == s) {
            return Some(path[i..].to_vec());
        }
        path.push(s.to_string());
        for t in table.get(s).into_iter().flatten() {
            if let Some(c) = visit(t, table, path) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    for s in table.keys() {
        assert_eq!(
            visit(s, &table, &mut Vec::new()),
            None,
            "a circle in the table"
        );
    }
}

#[test]
fn no_module_takes_part_in_an_import_circle() {
    let all = imports();
    let modules: BTreeSet<Vec<String>> = all.keys().cloned().collect();
    // A reference names the deepest module it reaches; a module using its own ancestors
    // (`super::`, the parent's items) is how Rust nests, not a circle.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, (_, found)) in &all {
        for i in found {
            let to = (0..=i.target.len())
                .rev()
                .map(|n| i.target[..n].to_vec())
                .find(|m| modules.contains(m))
                .unwrap_or_default();
            if to != *from && !from.starts_with(&to) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Tarjan's strongly connected components: any of more than one module is a circle.
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, (usize, usize)>,
        stack: Vec<Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Vec<String>) {
            self.index.insert(v.clone(), (self.next, self.next));
            self.next += 1;
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.index[v].1.min(self.index[w].1);
                    self.index.get_mut(v).expect("indexed").1 = low;
                } else if self.stack.contains(w) {
                    let low = self.index[v].1.min(self.index[w].0);
                    self.index.get_mut(v).expect("indexed").1 = low;
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    let last = w == *v;
                    component.push(w);
                    if last {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges: &edges,
        index: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    let circles: Vec<String> = t
        .out
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "import circles between modules:\n{}",
        circles.join("\n")
    );
}
