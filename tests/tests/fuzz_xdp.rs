//! A bounded run of the XDP fuzzer (`cargo xtask fuzz` runs it for millions of frames).

use kettlewatch_tests::{env, fuzz};

#[test]
fn mutated_frames_keep_every_invariant() {
    if !env::have_root() {
        return;
    }
    let fixtures = env::fixtures();
    let seeds = fuzz::seeds(Some(&fixtures));
    assert!(seeds.len() > 5, "fixture frames are among the seeds");
    let report = fuzz::run(&seeds, 20_000, 0x6b77);
    eprintln!("{report:?}");
    // The mutations reach every part of the parser.
    let got = |name: &str| report.stats.iter().any(|(n, v)| *n == name && *v > 0);
    for name in [
        "ipv4",
        "ipv6",
        "non_ip",
        "truncated_l3",
        "truncated_l4",
        "bad_ihl",
        "unsupported",
        "new_flows",
    ] {
        assert!(got(name), "{name} never happened: {:?}", report.stats);
    }
}
