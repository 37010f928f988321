//! Lists of names as data files: one case-insensitive glob a line, `#` comments. The
//! knowledge of which names say nothing about a device (radio-module makers, UPnP stacks,
//! DHCP clients) is reviewed like the classification rules, not buried in code.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiles a built-in list; `origin` names it in the panic a bad line causes, which the
/// list's own unit test reaches first.
pub fn compile(text: &str, origin: &str) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let glob = GlobBuilder::new(line)
            .case_insensitive(true)
            .build()
            .unwrap_or_else(|e| panic!("{origin}: {line:?}: {e}"));
        b.add(glob);
    }
    b.build()
        .unwrap_or_else(|e| panic!("{origin} does not build: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_case_insensitive_globs_and_comments_are_skipped() {
        let set = compile("# makers\nEspressif*\n\n  udhcp *  \n", "t.txt");
        assert!(set.is_match("ESPRESSIF Inc."));
        assert!(set.is_match("udhcp 1.36.1"));
        assert!(!set.is_match("# makers"));
        assert!(!set.is_match("Sonos, Inc."));
    }

    #[test]
    #[should_panic(expected = "t.txt: \"[\"")]
    fn a_bad_line_names_its_list() {
        compile("[\n", "t.txt");
    }
}
