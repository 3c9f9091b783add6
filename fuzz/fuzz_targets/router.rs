#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| waterspout_fuzz::router(data));
