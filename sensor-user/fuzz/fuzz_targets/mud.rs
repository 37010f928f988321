#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sensor_user::fuzzing::mud_file(data));
