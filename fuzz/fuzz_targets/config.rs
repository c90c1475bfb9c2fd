#![no_main]
//! The configuration loader (`rconfig::load_from_str`): YAML text, then
//! `REGISTRY_*` overrides. Input: the YAML, optionally followed by a line
//! `%%env` and `VAR=value` lines. Never panics; what it accepts has a
//! listen address that resolves.
//!
//! `http.addr` is resolved (`to_socket_addrs`): run this target where name
//! lookups fail fast (bench/fuzz.sh and fuzz/run-ci.sh use a network
//! namespace of its own).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let (yaml, env) = text.split_once("\n%%env\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(config) = rconfig::load_from_str(yaml, "fuzz", env) {
        let _ = config.ignored();
        rconfig::load::listen_addr(&config.http.addr)
            .expect("an accepted configuration has a listen address");
    }
});
