//! What the loaders share: opening a feed file (gzip or not), streaming its one big
//! array, the errors, and the per-file summary.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::value::MapAccessDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Value;

/// Refusals listed one by one in a summary; past this only the count grows, so a broken
/// feed cannot fill memory with reasons.
pub const MAX_REFUSALS: usize = 20;

const BUF: usize = 64 * 1024;

/// Which publisher's format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FeedFormat {
    /// NVD CVE JSON 2.0 (`nvdcve-2.0-*.json`).
    Nvd,
    /// CISA Known Exploited Vulnerabilities (`known_exploited_vulnerabilities.json`).
    Kev,
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedFormat::Nvd => "NVD CVE JSON 2.0",
            FeedFormat::Kev => "CISA KEV",
        })
    }
}

/// A file that could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
}

impl LoadError {
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        LoadError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    fn json(path: &Path, e: serde_json::Error) -> Self {
        if e.line() == 0 {
            // No position: a read or gzip error under the parser.
            return LoadError::format(path, e.to_string());
        }
        let full = e.to_string();
        // serde_json appends the position, which the prefix already gives.
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        LoadError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// One record left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// 0-based place in the feed's array.
    pub index: usize,
    /// The CVE id, when the record had a usable one.
    pub cve: Option<String>,
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cve {
            Some(id) => write!(f, "{id}: {}", self.reason),
            None => write!(f, "record {}: {}", self.index, self.reason),
        }
    }
}

/// What one file gave.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FeedSummary {
    pub path: PathBuf,
    pub format: FeedFormat,
    /// Records kept.
    pub loaded: usize,
    /// Records left out on purpose (NVD `Rejected`).
    pub skipped: usize,
    /// Records refused as unusable; `refusals` lists the first [`MAX_REFUSALS`].
    pub refused: usize,
    pub refusals: Vec<Refusal>,
    /// The feed's own date (NVD `timestamp`, KEV `dateReleased`), to show a stale feed.
    pub feed_date: Option<String>,
}

impl FeedSummary {
    pub(crate) fn new(path: &Path, format: FeedFormat) -> Self {
        FeedSummary {
            path: path.to_path_buf(),
            format,
            loaded: 0,
            skipped: 0,
            refused: 0,
            refusals: Vec::new(),
            feed_date: None,
        }
    }

    pub(crate) fn refuse(&mut self, index: usize, cve: Option<String>, reason: String) {
        self.refused += 1;
        if self.refusals.len() < MAX_REFUSALS {
            self.refusals.push(Refusal { index, cve, reason });
        }
    }
}

/// Opens `path`, decompressing when it starts with the gzip magic bytes.
pub(crate) fn open(path: &Path) -> Result<Box<dyn BufRead>, LoadError> {
    let file = File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decompressed(file).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `r`, gunzipped when it starts with the gzip magic bytes (names lie; bytes do not).
pub(crate) fn decompressed<'a>(r: impl Read + 'a) -> io::Result<Box<dyn BufRead + 'a>> {
    let mut r = BufReader::with_capacity(BUF, r);
    if r.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        // Multi-member: `gzip -c a b > c` and some mirrors produce several members.
        let gz = flate2::bufread::MultiGzDecoder::new(r);
        Ok(Box::new(BufReader::with_capacity(BUF, gz)))
    } else {
        Ok(Box::new(r))
    }
}

/// The top-level fields other than the streamed array: only strings, numbers and
/// booleans are kept.
#[derive(Debug, Default)]
pub(crate) struct Top {
    pub fields: HashMap<String, Value>,
    pub saw_array: bool,
}

impl Top {
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// Parses a top-level JSON object from `r`, handing each element of its array `key` to
/// `item` as soon as it is parsed, so a feed of any size needs memory for one record.
/// `T` should not fail on a well-formed but odd record (see [`Object`], [`Lenient`]):
/// its errors abort the file.
pub(crate) fn stream<T: DeserializeOwned>(
    path: &Path,
    r: impl Read,
    key: &'static str,
    item: &mut dyn FnMut(usize, T),
) -> Result<Top, LoadError> {
    // serde_json reads byte by byte; a concrete `BufReader` on top lets std serve those
    // from its buffer instead of a dynamic call per byte (five times faster here).
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(BUF, r));
    let top = TopSeed { key, item }
        .deserialize(&mut de)
        .map_err(|e| LoadError::json(path, e))?;
    de.end().map_err(|e| LoadError::json(path, e))?;
    Ok(top)
}

struct TopSeed<'a, T> {
    key: &'static str,
    item: &'a mut dyn FnMut(usize, T),
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for TopSeed<'_, T> {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for TopSeed<'_, T> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object with a `{}` array", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top::default();
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                if top.saw_array {
                    return Err(de::Error::duplicate_field(self.key));
                }
                map.next_value_seed(ArraySeed {
                    item: &mut *self.item,
                })?;
                top.saw_array = true;
            } else if let Scalar(Some(v)) = map.next_value()? {
                top.fields.insert(k, v);
            }
        }
        Ok(top)
    }
}

struct ArraySeed<'a, T> {
    item: &'a mut dyn FnMut(usize, T),
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for ArraySeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ArraySeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(v) = seq.next_element::<T>()? {
            (self.item)(i, v);
            i += 1;
        }
        Ok(())
    }
}

/// A top-level value kept only when it is small; objects and arrays are skipped
/// unread into memory.
struct Scalar(Option<Value>);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(Some(Value::Bool(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.into())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(Some(Value::String(v.to_string()))))
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
}

/// A field parsed as `T` when it fits, else why not: a wrong type in one record refuses
/// that record instead of failing the file. Goes through a `Value`, so use it on the
/// fields that are kept, and let the rest (descriptions, references) be skipped unread.
pub(crate) struct Lenient<T>(pub Result<T, String>);

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Lenient(
            serde_json::from_value(v).map_err(|e| e.to_string()),
        ))
    }
}

/// `T` read straight from the stream when the value is an object, else what it was
/// instead. `T`'s own fields must be [`Lenient`] or `Option`s of it to never fail.
pub(crate) struct Object<T>(pub Result<T, String>);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor(std::marker::PhantomData))
    }
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<T> ObjectVisitor<T> {
    fn not(what: &str) -> Object<T> {
        Object(Err(format!("{what}, not an object")))
    }
}

impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|t| Object(Ok(t)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Object<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::not("an array"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Object<T>, E> {
        Ok(Self::not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Object<T>, E> {
        Ok(Self::not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Object<T>, E> {
        Ok(Self::not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Object<T>, E> {
        Ok(Self::not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Object<T>, E> {
        Ok(Self::not("a string"))
    }
    fn visit_unit<E>(self) -> Result<Object<T>, E> {
        Ok(Self::not("null"))
    }
}

/// A CVE id in canonical form (`CVE-2024-6387`), or `None`.
pub(crate) fn cve_id(s: &str) -> Option<String> {
    let id = s.trim().to_ascii_uppercase();
    let rest = id.strip_prefix("CVE-")?;
    let (year, num) = rest.split_once('-')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (year.len() == 4 && digits(year) && (4..=19).contains(&num.len()) && digits(num)).then_some(id)
}

/// Orders CVE ids by year and then number (`CVE-2024-6387` before `CVE-2024-10000`).
pub(crate) fn cve_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(id: &str) -> Option<(u32, u64)> {
        let (y, n) = id.strip_prefix("CVE-")?.split_once('-')?;
        Some((y.parse().ok()?, n.parse().ok()?))
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run(text: &str) -> Result<(Top, Vec<Value>), LoadError> {
        let mut got = Vec::new();
        let top = stream(
            Path::new("feeds/x.json"),
            text.as_bytes(),
            "vulnerabilities",
            &mut |_, v| got.push(v),
        )?;
        Ok((top, got))
    }

    #[test]
    fn streams_the_array_and_keeps_scalars() {
        let (top, items) = run(r#"{"a": "x", "n": 3, "o": {"big": [1,2]},
            "vulnerabilities": [{"k": 1}, {"k": 2}], "z": null}"#)
        .expect("valid");
        assert!(top.saw_array);
        assert_eq!(top.str("a"), Some("x"));
        assert_eq!(top.fields.get("n"), Some(&Value::from(3)));
        assert!(!top.fields.contains_key("o"));
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let err = run("{\n  \"vulnerabilities\": [\n    {\"k\": 1},\n    {\"k\" 2}\n  ]\n}")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("feeds/x.json:4:10: expected `:`"),
            "{err:?}"
        );
        let err = run("[1, 2]").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "feeds/x.json:1:1: invalid type: sequence, expected a JSON object with a \
                 `vulnerabilities` array"
            )
        );
        let err = run("{\"vulnerabilities\": []} x")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("feeds/x.json:1:25: trailing characters")
        );
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        let text = br#"{"vulnerabilities": [1]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).expect("in memory");
        let packed = gz.finish().expect("in memory");
        for bytes in [&text[..], &packed[..]] {
            let mut out = String::new();
            decompressed(bytes)
                .and_then(|mut r| r.read_to_string(&mut out))
                .expect("reads");
            assert_eq!(out.as_bytes(), text);
        }
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let bytes = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff];
        let r = decompressed(&bytes[..]).expect("header peek");
        let e = stream(
            Path::new("f.json.gz"),
            r,
            "vulnerabilities",
            &mut |_, _: Value| {},
        );
        assert!(matches!(e, Err(LoadError::Format { .. })), "{e:?}");
    }

    #[test]
    fn cve_ids() {
        assert_eq!(cve_id("cve-2024-6387").as_deref(), Some("CVE-2024-6387"));
        assert_eq!(cve_id("CVE-2021-44228"), Some("CVE-2021-44228".into()));
        assert_eq!(cve_id("CVE-2024-123"), None);
        assert_eq!(cve_id("GHSA-xxxx"), None);
        assert_eq!(
            cve_order("CVE-2024-6387", "CVE-2024-10000"),
            std::cmp::Ordering::Less
        );
        assert_eq!(
            cve_order("CVE-2023-99999", "CVE-2024-0001"),
            std::cmp::Ordering::Less
        );
    }
}
