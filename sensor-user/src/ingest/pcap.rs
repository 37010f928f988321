//! Reading frames from pcap and pcapng files, with errors that say where a file is damaged.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use pcap_file::{
    DataLink,
    pcap::PcapReader,
    pcapng::{
        Block, PcapNgReader,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// The captured bytes, from the Ethernet header on.
    pub data: Vec<u8>,
}

/// A capture that cannot be read (in full).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Could not open or read the file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error("{path}: not a pcap or pcapng capture ({detail})")]
    Format { path: PathBuf, detail: String },
    /// A link type other than Ethernet.
    #[error(
        "{path}: link type {linktype} is not Ethernet; the sensor reads Ethernet captures only"
    )]
    LinkType { path: PathBuf, linktype: String },
    /// The file is damaged after some frames.
    #[error("{path}: damaged after frame {frames_read}: {detail}")]
    Damaged {
        path: PathBuf,
        frames_read: u64,
        detail: String,
    },
}

/// Where frames come from: a file, or bytes already in memory (the fuzz targets).
type Reader = BufReader<Box<dyn Read + Send>>;

enum Inner {
    Pcap(PcapReader<Reader>),
    PcapNg {
        reader: PcapNgReader<Reader>,
        /// Timestamp units per second, per interface.
        units: Vec<u128>,
    },
}

/// Frames of one capture file, in order.
pub struct Capture {
    path: PathBuf,
    inner: Inner,
    frames: u64,
    done: bool,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Counts the bytes taken from a reader, for progress.
struct Counted<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

impl Capture {
    /// Opens a pcap or pcapng file and checks it holds Ethernet.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.into(),
            source,
        })?;
        Self::from_reader(path, file)
    }

    /// Reads a capture from any reader; `path` names it in errors.
    pub fn from_reader(
        path: &Path,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut reader = Counted {
            inner: reader,
            n: read.clone(),
        };
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => CaptureError::Format {
                path: path.into(),
                detail: "shorter than a file header".into(),
            },
            _ => CaptureError::Io {
                path: path.into(),
                source: e,
            },
        })?;
        let source: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(magic).chain(reader));
        let file = BufReader::new(source);
        let format = |e: pcap_file::PcapError| CaptureError::Format {
            path: path.into(),
            detail: e.to_string(),
        };
        let inner = if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            Inner::PcapNg {
                reader: PcapNgReader::new(file).map_err(format)?,
                units: Vec::new(),
            }
        } else {
            let reader = PcapReader::new(file).map_err(format)?;
            let link = reader.header().datalink;
            if link != DataLink::ETHERNET {
                return Err(CaptureError::LinkType {
                    path: path.into(),
                    linktype: format!("{link:?}"),
                });
            }
            Inner::Pcap(reader)
        };
        Ok(Self {
            path: path.into(),
            inner,
            frames: 0,
            done: false,
            read,
        })
    }

    /// Bytes of the file read so far (read ahead of the frames handed out by a buffer's
    /// worth).
    pub fn bytes_read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Frames read so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    fn damaged(&mut self, detail: String) -> CaptureError {
        self.done = true;
        CaptureError::Damaged {
            path: self.path.clone(),
            frames_read: self.frames,
            detail,
        }
    }

    /// The next frame; an error ends the file.
    pub fn next_frame(&mut self) -> Option<Result<Frame, CaptureError>> {
        if self.done {
            return None;
        }
        let res = match &mut self.inner {
            Inner::Pcap(r) => match r.next_packet() {
                None => None,
                Some(Ok(p)) => Some(Ok(Frame {
                    ts_ns: p.timestamp.as_nanos() as u64,
                    data: p.data.into_owned(),
                })),
                Some(Err(e)) => Some(Err(NgError::Damaged(e.to_string()))),
            },
            Inner::PcapNg { reader, units } => next_pcapng(reader, units),
        };
        match res {
            None => {
                self.done = true;
                None
            }
            Some(Ok(f)) => {
                self.frames += 1;
                Some(Ok(f))
            }
            Some(Err(NgError::LinkType(l))) => {
                self.done = true;
                Some(Err(CaptureError::LinkType {
                    path: self.path.clone(),
                    linktype: l,
                }))
            }
            Some(Err(NgError::Damaged(d))) => Some(Err(self.damaged(d))),
        }
    }
}

enum NgError {
    LinkType(String),
    Damaged(String),
}

fn next_pcapng(
    reader: &mut PcapNgReader<Reader>,
    units: &mut Vec<u128>,
) -> Option<Result<Frame, NgError>> {
    loop {
        let block = match reader.next_block()? {
            Ok(b) => b,
            Err(e) => return Some(Err(NgError::Damaged(e.to_string()))),
        };
        match block {
            Block::SectionHeader(_) => units.clear(),
            Block::InterfaceDescription(idb) => {
                if idb.linktype != DataLink::ETHERNET {
                    return Some(Err(NgError::LinkType(format!("{:?}", idb.linktype))));
                }
                units.push(units_per_second(&idb));
            }
            Block::EnhancedPacket(epb) => {
                let Some(per_sec) = units.get(epb.interface_id as usize).copied() else {
                    return Some(Err(NgError::Damaged(format!(
                        "packet on undeclared interface {}",
                        epb.interface_id
                    ))));
                };
                // pcap-file 2 hands over the raw timestamp units as if they were ns.
                let raw = epb.timestamp.as_nanos();
                return Some(Ok(Frame {
                    ts_ns: (raw * 1_000_000_000 / per_sec) as u64,
                    data: epb.data.into_owned(),
                }));
            }
            Block::SimplePacket(spb) => {
                return Some(Ok(Frame {
                    ts_ns: 0,
                    data: spb.data.into_owned(),
                }));
            }
            _ => {}
        }
    }
}

/// Timestamp units per second of an interface (`if_tsresol`; microseconds by default).
fn units_per_second(idb: &InterfaceDescriptionBlock<'_>) -> u128 {
    let resol = idb
        .options
        .iter()
        .find_map(|o| match o {
            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
            _ => None,
        })
        .unwrap_or(6);
    let exp = u32::from(resol & 0x7f).min(100);
    if resol & 0x80 != 0 {
        1u128 << exp.min(120)
    } else {
        10u128.pow(exp.min(38))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idb(resol: Option<u8>) -> InterfaceDescriptionBlock<'static> {
        InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: resol
                .map(|r| vec![InterfaceDescriptionOption::IfTsResol(r)])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn pcapng_timestamp_resolution() {
        assert_eq!(units_per_second(&idb(None)), 1_000_000);
        assert_eq!(units_per_second(&idb(Some(9))), 1_000_000_000);
        assert_eq!(units_per_second(&idb(Some(0x80 | 10))), 1024);
    }
}
