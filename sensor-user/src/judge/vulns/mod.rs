//! Known vulnerabilities for the software and devices the inventory found: loads NVD CVE
//! JSON 2.0 feeds and CISA's Known Exploited Vulnerabilities catalog from local files
//! (gzip or not), and answers which CVEs apply to a (part, vendor, product, version).
//!
//! `cpe` parses CPE 2.3 names, `version` orders versions, `nvd` and `kev` load the
//! publishers' files, `index` matches. Loading reports per file what was kept and what
//! was refused; a malformed file is an error naming the file, line and column.

pub mod cpe;
mod entry;
mod feed;
pub mod index;
pub mod kev;
pub mod nvd;
pub mod stage;
pub mod version;

#[cfg(test)]
mod tests;

use std::io::{Cursor, Read};
use std::path::Path;

pub use cpe::{Component, Cpe, CpeError, Part};
pub use feed::{FeedFormat, FeedSummary, LoadError, MAX_REFUSALS, Refusal};
pub use index::{Basis, VulnDb, VulnMatch};
pub use kev::KevFeed;
pub use nvd::NvdFeed;
pub use version::Version;

/// One loaded file.
#[derive(Debug)]
pub enum Feed {
    Nvd(NvdFeed),
    Kev(KevFeed),
}

/// How far into a file its format is looked for: both publishers put their
/// identifying fields before the records.
const SNIFF: u64 = 8 * 1024;

/// Loads `path`, telling NVD from KEV by content (gzip or not).
pub fn load(path: &Path) -> Result<(Feed, FeedSummary), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut r = feed::decompressed(file).map_err(io)?;
    let mut head = Vec::new();
    (&mut r).take(SNIFF).read_to_end(&mut head).map_err(io)?;
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    let nvd = has(b"\"NVD_CVE\"");
    let kev = has(b"\"catalogVersion\"");
    let rest = Cursor::new(head).chain(r);
    match (nvd, kev) {
        (true, false) => nvd::read(path, rest).map(|(f, s)| (Feed::Nvd(f), s)),
        (false, true) => kev::read(path, rest).map(|(f, s)| (Feed::Kev(f), s)),
        _ => Err(LoadError::format(
            path,
            "neither an NVD CVE JSON 2.0 feed nor a CISA KEV catalog",
        )),
    }
}
