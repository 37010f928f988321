//! The console's pages: each a function from the store to HTML.

pub mod alerts;
pub mod device;
pub mod devices;
pub mod shell;

/// A rendered page.
pub enum Page {
    /// 200.
    Found(maud::Markup),
    /// 404, with a page that says what was not found.
    NotFound(maud::Markup),
}

/// Epoch ns as the events write time, to the second.
pub(crate) fn when(epoch_ns: u64) -> String {
    if epoch_ns == 0 {
        return "never".into();
    }
    chrono::DateTime::from_timestamp_nanos(epoch_ns as i64)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Now, epoch ns.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A MAC as it appears in a page's address.
pub(crate) fn device_href(mac: &str) -> String {
    format!("/device/{mac}")
}
