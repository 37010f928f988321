#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sensor_user::fuzzing::vuln_feed(data));
