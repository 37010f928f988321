//! Reading per-CPU maps in batches (BPF_MAP_LOOKUP_BATCH, which aya has no wrapper for
//! yet), and key by key where the kernel lacks it.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::{
    Pod,
    maps::{Map, MapData, MapError, PerCpuArray, PerCpuHashMap},
};

use super::object::MapsError;

/// A per-CPU map's descriptor, for batch calls.
pub fn map_fd<'a>(map: &'a Map) -> Option<BorrowedFd<'a>> {
    match map {
        Map::PerCpuLruHashMap(d) | Map::PerCpuHashMap(d) | Map::PerCpuArray(d) => {
            Some(d.fd().as_fd())
        }
        _ => None,
    }
}

/// Reads a per-CPU hash map or array: in batches when the kernel supports it, else key by
/// key.
/// `fold` turns one key's per-CPU values into what the caller keeps (a sum, usually), so
/// a million flows cost no million small allocations.
pub fn read_per_cpu<K: Pod, V: Pod, T>(
    map: &Map,
    name: &'static str,
    cpus: usize,
    batched: bool,
    fold: impl Fn(&[V]) -> T,
) -> Result<Vec<(K, T)>, MapsError> {
    if let Some(fd) = map_fd(map).filter(|_| batched) {
        match lookup_batch::<K, V, T>(fd, cpus, &fold) {
            Ok(rows) => return Ok(rows),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(source) => return Err(MapsError::Io { name, source }),
        }
    }
    if let Map::PerCpuArray(_) = map {
        let a = PerCpuArray::<&MapData, V>::try_from(map)
            .map_err(|source| MapsError::Map { name, source })?;
        let mut rows = Vec::new();
        for (i, v) in a.iter().enumerate() {
            let v = v.map_err(|source| MapsError::Map { name, source })?;
            // SAFETY: an array's key is its u32 index; K is u32 for arrays.
            let key: K = unsafe { std::ptr::read_unaligned((&(i as u32) as *const u32).cast()) };
            let per_cpu: Vec<V> = v.iter().copied().collect();
            rows.push((key, fold(&per_cpu)));
        }
        return Ok(rows);
    }
    let m = PerCpuHashMap::<&MapData, K, V>::try_from(map)
        .map_err(|source| MapsError::Map { name, source })?;
    let mut rows = Vec::new();
    for item in m.iter() {
        match item {
            Ok((k, v)) => {
                let per_cpu: Vec<V> = v.iter().copied().collect();
                rows.push((k, fold(&per_cpu)));
            }
            // Deleted (evicted) between the key walk and the lookup.
            Err(MapError::KeyNotFound) => {}
            Err(source) => return Err(MapsError::Map { name, source }),
        }
    }
    Ok(rows)
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// One BPF_MAP_LOOKUP_BATCH: the kernel fills `attr`'s buffers and sets its count.
///
/// # Safety
/// `attr` must point at key and value buffers sized for its `count`, and at batch tokens
/// at least as large as the map's.
pub unsafe fn lookup_batch_call(attr: &mut BatchAttr) -> Option<io::Error> {
    // SAFETY: the caller's promise above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>(),
        )
    };
    (rc < 0).then(io::Error::last_os_error)
}

/// The `bpf_attr` of a batch call.
#[repr(C)]
#[derive(Default)]
pub struct BatchAttr {
    pub in_batch: u64,
    pub out_batch: u64,
    pub keys: u64,
    pub values: u64,
    pub count: u32,
    pub map_fd: u32,
    pub elem_flags: u64,
    pub flags: u64,
}

/// BPF_MAP_LOOKUP_BATCH over the whole map. aya has no wrapper for it yet.
pub fn lookup_batch<K: Pod, V: Pod, T>(
    fd: BorrowedFd<'_>,
    cpus: usize,
    fold: &impl Fn(&[V]) -> T,
) -> io::Result<Vec<(K, T)>> {
    // Per-CPU values come as one 8-byte-aligned slot per possible CPU.
    let stride = size_of::<V>().next_multiple_of(8);
    let value_bytes = stride * cpus;
    // A hash bucket must fit in one batch, or the kernel answers ENOSPC; start generous
    // (fewer syscalls; the buffers are reused across batches).
    let mut chunk: usize = 16_384;
    let mut rows = Vec::new();
    let mut token = [0u8; 64];
    let mut next = [0u8; 64];
    let mut first = true;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut per_cpu: Vec<V> = Vec::with_capacity(cpus);
    loop {
        // Fresh zeroed buffers only when the chunk grows: `vec!` of zeros is one calloc,
        // where `resize` writes every byte (a debug build spent most of a replay there).
        if keys.len() < chunk * size_of::<K>() {
            keys = vec![0u8; chunk * size_of::<K>()];
            values = vec![0u8; chunk * value_bytes];
        }
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token.as_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: attr points at buffers sized for `count` keys and values, and the batch
        // tokens are larger than any map's token (a u32 bucket index for hash maps).
        let err = unsafe { lookup_batch_call(&mut attr) };
        match err.as_ref().and_then(io::Error::raw_os_error) {
            Some(libc::ENOSPC) if attr.count == 0 => {
                chunk *= 2;
                continue;
            }
            Some(libc::ENOENT) | None => {}
            Some(_) => return Err(err.expect("checked above")),
        }
        for i in 0..attr.count as usize {
            // SAFETY: the kernel filled `count` keys and values; Pod types read unaligned.
            let key: K =
                unsafe { std::ptr::read_unaligned(keys[i * size_of::<K>()..].as_ptr().cast()) };
            let base = i * value_bytes;
            per_cpu.clear();
            per_cpu.extend((0..cpus).map(|c| unsafe {
                std::ptr::read_unaligned(values[base + c * stride..].as_ptr().cast::<V>())
            }));
            rows.push((key, fold(&per_cpu)));
        }
        if err.is_some() {
            // ENOENT: that was the last batch.
            return Ok(rows);
        }
        token = next;
        first = false;
    }
}
