//! The drivers: a live interface (`live`) and capture files (`replay`, reading `pcap`)
//! both feed the same engine, so the same frames give the same events; `fleet` copies
//! a fleet's devices and alerts from the broker for `console --nats`.

pub mod fleet;
pub mod live;
pub mod map_reader;
pub mod pcap;
pub mod replay;
pub mod watch;
