//! Watching the configuration file and the feed files it names, by modification time
//! alone: a tick stats a handful of files and parses nothing. Only a change (or SIGHUP)
//! loads the configuration, and the loaded one says which feeds to watch next.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::config::Config;

/// The files whose change reloads the configuration, with the times last seen.
#[derive(Debug, Default)]
pub struct Watch {
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

impl Watch {
    /// The configuration file at `path` and the feeds `config` (loaded from it) names.
    pub fn new(path: Option<&Path>, config: &Config) -> Self {
        let mut w = Self::default();
        if let Some(p) = path {
            w.follow(p, config);
        }
        w
    }

    /// Watches `path` and the feeds of `config` from now on, at their current times.
    pub fn follow(&mut self, path: &Path, config: &Config) {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.files = std::iter::once(path.to_path_buf())
            .chain(
                config
                    .intel
                    .feeds
                    .iter()
                    .map(|f| base.join(f.path.get_ref()))
                    .chain(
                        config
                            .vulns
                            .feeds
                            .iter()
                            .map(|f| base.join(f.path.get_ref())),
                    ),
            )
            .map(|p| {
                let t = mtime(&p);
                (p, t)
            })
            .collect();
    }

    /// Whether any watched file changed (appeared, went, or was written) since the last
    /// call; the new times are kept either way, so a broken file is reported once.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for (p, seen) in &mut self.files {
            let now = mtime(p);
            if now != *seen {
                *seen = now;
                changed = true;
            }
        }
        changed
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_feed_is_a_change_and_an_unchanged_tree_is_not() {
        let dir = std::env::temp_dir().join(format!("kw-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("kw.toml");
        let text = "[[intel.feed]]\npath = \"c2.txt\"\nformat = \"plain\"\n";
        std::fs::write(&cfg, text).unwrap();
        std::fs::write(dir.join("c2.txt"), "192.0.2.1\n").unwrap();
        let config = Config::parse(text, "kw.toml").unwrap();
        let mut w = Watch::new(Some(&cfg), &config);
        assert!(!w.changed(), "nothing was written");
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(dir.join("c2.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(w.changed(), "the feed was written");
        assert!(!w.changed(), "the change was reported once");
        std::fs::remove_file(dir.join("c2.txt")).unwrap();
        assert!(w.changed(), "the feed went away");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
