//! The drivers: a live interface (`live`) and capture files (`replay`, reading `pcap`)
//! both feed the same engine, so the same frames give the same events.

pub mod live;
pub mod map_reader;
pub mod pcap;
pub mod replay;
pub mod watch;
