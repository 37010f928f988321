//! Stratum, the JSON-RPC line protocol miners speak to their pools, recognised from a
//! connection's first line: Stratum V1's `mining.*` methods (`mining.subscribe`,
//! `mining.authorize`, the pool's `mining.notify` and `mining.set_difficulty`: Braiins'
//! "Stratum V1" documentation and BIP 310), the CryptoNote pools' `login` with an `agent`
//! and their `job` pushes (the protocol XMRig and Monero pools speak), and
//! EthereumStratum's `eth_submitLogin`. A miner on a hijacked device uses whatever port
//! its pool gives it; the method says what it is.
//!
//! Kept: the method and the miner's own name and version (`XMRig/6.21.0`,
//! `cgminer/4.10.0`). Never kept: the login (a wallet address), the password or a job.

use serde_json::Value;

use super::{Hint, banner::Banner, banner::Protocol};
use crate::discover::text;

/// Longest first line looked at: a subscribe or login is a few hundred bytes.
const MAX_LINE: usize = 4096;

/// Whether a JSON-RPC method is a miner's or a pool's, given its parameters.
fn is_mining(method: &str, params: Option<&Value>) -> bool {
    let has = |k: &str| params.and_then(|p| p.get(k)).is_some();
    method.starts_with("mining.")
        || method == "eth_submitLogin"
        || (method == "login" && has("login") && (has("agent") || has("pass")))
        || (method == "job" && has("blob") && has("job_id"))
}

/// Stratum, if the first line of `p` is a JSON-RPC request whose method is a miner's or
/// a pool's; `method` is it and `user_agent` the miner's name when it gives one.
pub fn decode(p: &[u8], _hint: Hint) -> Option<Banner> {
    if p.first() != Some(&b'{') {
        return None;
    }
    let end = p.iter().take(MAX_LINE).position(|&b| b == b'\n')?;
    let v: Value = serde_json::from_slice(&p[..end]).ok()?;
    let method = v.get("method")?.as_str()?;
    let params = v.get("params");
    if !is_mining(method, params) {
        return None;
    }
    let mut b = Banner::new(Protocol::Stratum);
    b.method = Some(text(method.as_bytes()));
    let agent = match method {
        // Stratum V1: the first parameter of a subscribe is the miner's name.
        "mining.subscribe" => params.and_then(|p| p.get(0)),
        _ => params.and_then(|p| p.get("agent")),
    };
    b.user_agent = agent
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(|a| text(a.as_bytes()));
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stratum(p: &[u8]) -> Option<Banner> {
        decode(p, Hint::default())
    }

    /// The first lines of Braiins' Stratum V1 examples, XMRig's login (its
    /// `src/base/net/stratum/Client.cpp` writes `login`, `pass`, `agent`, `algo`) and a
    /// pool's job push.
    #[test]
    fn miners_and_pools_by_their_methods() {
        let s = stratum(
            b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.10.0\"]}\n",
        )
        .expect("subscribe");
        assert_eq!(s.protocol, Protocol::Stratum);
        assert_eq!(s.method.as_deref(), Some("mining.subscribe"));
        assert_eq!(s.user_agent.as_deref(), Some("cgminer/4.10.0"));
        let x = stratum(
            b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4AdUnd\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\"]}}\n",
        )
        .expect("login");
        assert_eq!(
            x.user_agent.as_deref(),
            Some("XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0")
        );
        let text = serde_json::to_string(&x).unwrap();
        assert!(!text.contains("4AdUnd"), "the wallet is not kept: {text}");
        assert!(
            stratum(b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"bf\",\"00\"]}\n")
                .is_some()
        );
        assert!(
            stratum(b"{\"jsonrpc\":\"2.0\",\"method\":\"job\",\"params\":{\"blob\":\"07\",\"job_id\":\"1\",\"target\":\"b88d\"}}\n")
                .is_some()
        );
    }

    #[test]
    fn other_json_rpc_and_json_are_not() {
        for p in [
            &b"{\"id\":1,\"method\":\"login\",\"params\":{\"user\":\"a\"}}\n"[..],
            b"{\"id\":1,\"result\":true,\"error\":null}\n",
            b"{\"method\":\"subscribe\",\"params\":[]}\n",
            b"{\"method\":\"mining.subscribe\"",
            b"{\"method\": 3}\n",
            b"[1,2]\n",
            b"{not json}\n",
        ] {
            assert_eq!(stratum(p), None, "{:?}", String::from_utf8_lossy(p));
        }
    }
}
