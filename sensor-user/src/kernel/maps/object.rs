//! Taking maps out of the loaded object, and the one error type of every map read and
//! write.

use std::io;

use aya::{
    Ebpf,
    maps::{Map, MapError},
};

/// A map that is missing from the object or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// The object has no map of that name (a build mismatch).
    #[error("the eBPF object has no map {0}")]
    Missing(&'static str),
    /// The map is not of the expected type.
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    /// A syscall on the map failed.
    #[error("reading map {name}: {source}")]
    Io {
        name: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Takes the map `name` out of a loaded object, untyped.
pub fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, MapsError> {
    ebpf.take_map(name).ok_or(MapsError::Missing(name))
}

/// Takes the map `name` out of a loaded object as `T`.
pub fn typed<T: TryFrom<Map, Error = MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T, MapsError> {
    T::try_from(take(ebpf, name)?).map_err(|source| MapsError::Map { name, source })
}

/// Names the map a failed call was about.
pub fn map_err(name: &'static str) -> impl Fn(MapError) -> MapsError {
    move |source| MapsError::Map { name, source }
}
