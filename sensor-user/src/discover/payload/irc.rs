//! IRC, recognised from a connection's first message (RFC 2812 section 2.3, and IRCv3's
//! `CAP` negotiation): a client registers with `PASS`, `NICK`, `USER` or `CAP`; a server
//! speaks first with a prefixed `NOTICE`, a numeric reply or `PING`. Bots take their
//! orders over IRC on whatever port their server listens on, so the bytes say it, not the
//! port.
//!
//! Kept: the first line's command (`NICK`, `CAP`, `NOTICE`, `001`). Never kept: nicknames,
//! user names, passwords, channels or any text.

use super::{Hint, MAX_LIST, banner::Banner, banner::Protocol, head_lines};

/// Commands a client registers with (RFC 2812 section 3.1; IRCv3 capability negotiation).
const CLIENT: [&str; 4] = ["PASS", "NICK", "USER", "CAP"];

/// The words of a line: up to the trailing parameter (after " :"), which counts as one.
fn params(line: &[u8]) -> (usize, bool) {
    let (middle, trailing) = match line.windows(2).position(|w| w == b" :") {
        Some(at) => (&line[..at], true),
        None => (line, false),
    };
    let words = middle
        .split(|&c| c == b' ')
        .filter(|w| !w.is_empty())
        .count();
    (words, trailing)
}

/// A client line: a registration command with the parameters RFC 2812 gives it. `USER`
/// needs four (FTP's and POP3's `USER name` has one) and `PASS` alone proves nothing
/// (FTP and POP3 have it too): it counts only beside a `NICK` or `USER`.
fn client_command(line: &[u8]) -> Option<&'static str> {
    let (words, trailing) = params(line);
    let args = words.saturating_sub(1) + usize::from(trailing);
    let cmd = CLIENT.iter().find(|c| {
        line.len() > c.len() && line.starts_with(c.as_bytes()) && line[c.len()] == b' '
    })?;
    let ok = match *cmd {
        "NICK" => args == 1 && !trailing,
        "USER" => args >= 4,
        "PASS" => args == 1,
        "CAP" => {
            let sub = line[4..].split(|&c| c == b' ').next().unwrap_or(b"");
            [&b"LS"[..], b"REQ", b"END"].contains(&sub)
        }
        _ => false,
    };
    ok.then_some(*cmd)
}

/// A server line: `:server NOTICE ...`, `:server 001 ...`, `NOTICE AUTH :...` or
/// `PING :...`; the command.
fn server_command(line: &[u8]) -> Option<String> {
    let rest = match line.strip_prefix(b":") {
        Some(r) => {
            let sp = r.iter().position(|&c| c == b' ')?;
            if sp == 0 || r[..sp].iter().any(|c| !c.is_ascii_graphic()) {
                return None;
            }
            &r[sp + 1..]
        }
        None if line.starts_with(b"NOTICE AUTH :") || line.starts_with(b"PING :") => line,
        None => return None,
    };
    let cmd = rest.split(|&c| c == b' ').next().unwrap_or(b"");
    let numeric = cmd.len() == 3 && cmd.iter().all(u8::is_ascii_digit);
    let named = [&b"NOTICE"[..], b"PING", b"CAP", b"ERROR"].contains(&cmd);
    let (_, trailing) = params(rest);
    (trailing && (numeric || named)).then(|| String::from_utf8_lossy(cmd).into_owned())
}

/// IRC, if the first complete lines of `p` are a client's registration or a server's
/// first words; `method` is the first line's command. `None` otherwise.
pub fn decode(p: &[u8], _hint: Hint) -> Option<Banner> {
    let lines: Vec<&[u8]> = head_lines(p).take(MAX_LIST).collect();
    let first = *lines.first()?;
    let mut b = Banner::new(Protocol::Irc);
    if first.starts_with(b":") || first.starts_with(b"NOTICE ") || first.starts_with(b"PING ") {
        let mut cmds = lines.iter().map(|l| server_command(l));
        let head = cmds.next().flatten()?;
        if cmds.any(|c| c.is_none()) {
            return None;
        }
        b.method = Some(head);
        return Some(b);
    }
    let cmds: Option<Vec<&str>> = lines.iter().map(|l| client_command(l)).collect();
    let cmds = cmds?;
    if cmds.iter().all(|c| *c == "PASS") {
        return None;
    }
    b.method = Some(cmds[0].to_string());
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::payload::{PayloadFacts, decode as decode_payload};

    fn irc(p: &[u8]) -> Option<Banner> {
        decode(p, Hint::default())
    }

    #[test]
    fn a_client_registers_and_a_server_greets() {
        let c = irc(b"NICK bot123\r\nUSER bot 0 * :bot\r\n").expect("client");
        assert_eq!(c.method.as_deref(), Some("NICK"));
        let s = irc(b":irc.example.net NOTICE * :*** Looking up your hostname\r\n").unwrap();
        assert_eq!(s.method.as_deref(), Some("NOTICE"));
        let w = irc(b":irc.example.net 001 bot :Welcome\r\n").unwrap();
        assert_eq!(w.method.as_deref(), Some("001"));
        assert!(irc(b"CAP LS 302\r\n").is_some());
        assert!(irc(b"PASS x\r\nNICK a\r\n").is_some());
    }

    #[test]
    fn ftp_pop3_and_chatty_text_are_not_irc() {
        for p in [
            &b"USER anonymous\r\n"[..],
            b"PASS secret\r\n",
            b"USER a\r\nPASS b\r\n",
            b"NICK\r\n",
            b"NICK a b\r\n",
            b"CAP THIS\r\n",
            b":not a server line\r\n",
            b"hello world\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"NICK a\r\nHELLO\r\n",
        ] {
            assert_eq!(irc(p), None, "{:?}", String::from_utf8_lossy(p));
        }
    }

    /// `tshark -r irc.pcap -Y irc -T fields -e frame.number -e irc.request -e irc.response`:
    /// the client's `USER ... :...` (IRC on TCP/8000), the server's `NOTICE` from
    /// card.freenode.net; irc-cap-req.pcap: `CAP REQ` over TCP/80.
    #[test]
    fn the_captures_speak_irc_on_8000_and_80() {
        let got = |cap: &str| {
            let mut out = Vec::new();
            for f in crate::testdata::payloads(cap) {
                let hint = Hint {
                    server_port: Some(f.src_port.min(f.dst_port)),
                };
                if let Ok(Some(PayloadFacts::Banner(b))) = decode_payload(&f.data, hint)
                    && b.protocol == Protocol::Irc
                {
                    out.push((f.dst_port, b.method.unwrap_or_default()));
                }
            }
            out
        };
        let a = got("attacks-dev/arkime/irc.pcap");
        assert!(a.contains(&(8000, "USER".into())), "{a:?}");
        assert!(a.iter().any(|(_, m)| m == "NOTICE"), "{a:?}");
        let b = got("attacks-dev/arkime/irc-cap-req.pcap");
        assert!(b.contains(&(80, "CAP".into())), "{b:?}");
    }
}
