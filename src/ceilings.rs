//! The ceilings the token and login benchmarks are compared against: raw RS256 (RSA-2048),
//! ES256 (P-256) and Ed25519 signatures per second with aws-lc-rs, and argon2id password
//! verifications per second at the parameters of a Latchkey config, all on one thread.
//!
//!   cargo build --release --features bench
//!   taskset -c 0 target/release/latchkey --config FILE ceilings [--seconds 3]
//!
//! Pin it to the core the server runs on (bench/run.sh does): the limit of interest is what
//! that one core can do. Prints a human table on stderr and one line `BENCH_SIGN {json}` on
//! stdout for bench/suite.py.
//!
//! A subcommand of the server binary rather than a binary of its own because the release
//! profile's link-time optimisation runs once per binary: a second one added half a minute
//! to the benchmark's cold build.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};

use crate::config::LoginSettings;
use crate::crypto::password::{hash_with, verify_sync};

/// A signing input the size of a client_credentials access token's header.payload, so the
/// SHA-256 part of the work is the same as the server's (it is tiny next to the signature).
const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IkFCQ0RFRkdISUpLTCJ9.\
eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAiLCJzdWIiOiJiZW5jaC1yczI1NiIsImF1ZCI6Imh0dHA6Ly8xMjcu\
MC4wLjE6ODA4MCIsImV4cCI6MTcwMDAwMDYwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJBQkNERUZHSElKS0xNTk9Q\
UVJTVFVWIiwiY2xpZW50X2lkIjoiYmVuY2gtcnMyNTYiLCJzY29wZSI6ImFwaS5yZWFkIn0";

/// CPU time of the calling thread, from /proc (utime + stime in USER_HZ ticks, which are
/// 1/100 s on Linux), or None elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Operations per wall-clock second, and per second of CPU this thread actually got. On a
/// machine shared with other work the second is the ceiling of the core itself; the server's
/// requests per CPU-second (bench/run.py records its CPU share) compare with it.
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

/// Run `op` repeatedly for about `secs`. Checks the clock every op: even the fastest op here
/// (Ed25519, ~15 µs) dwarfs an `Instant::now()`.
fn rate(secs: f64, mut op: impl FnMut()) -> Rate {
    // A short untimed warm-up brings caches and the CPU clock to their steady state.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        op();
    }
    let cpu0 = thread_cpu_seconds();
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while start.elapsed() < limit {
        op();
        n += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => Some(n as f64 / (b - a)),
        _ => None,
    };
    Rate {
        wall: n as f64 / wall,
        cpu,
    }
}

/// Measure for about `secs` per operation and print the table and the `BENCH_SIGN` line.
pub fn run(login: &LoginSettings, secs: f64) -> anyhow::Result<()> {
    let rng = SystemRandom::new();
    let err = |_| anyhow::anyhow!("aws-lc-rs key generation failed");
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(err)?;
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(err)?;
    let ed = Ed25519KeyPair::generate().map_err(err)?;

    let mut sig = vec![0u8; rsa.public_modulus_len()];
    let rs256 = rate(secs, || {
        std::hint::black_box(rsa.sign(&RSA_PKCS1_SHA256, &rng, MESSAGE, &mut sig).is_ok());
    });
    let es256 = rate(secs, || {
        std::hint::black_box(ec.sign(&rng, MESSAGE).ok());
    });
    let eddsa = rate(secs, || {
        std::hint::black_box(ed.sign(MESSAGE));
    });

    // A login verifies a stored hash; verification reads m and t from the PHC string, so
    // hash once with the configured parameters and time verify_sync, the server's own call.
    let params = argon2::Params::new(login.argon2_memory_kib, login.argon2_iterations, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let stored = hash_with(&params, "bench-password")?;
    let argon2 = rate(secs.max(2.0), || {
        std::hint::black_box(verify_sync("bench-password", &stored));
    });

    eprintln!("one thread, {secs} s each (per wall-clock second / per CPU-second):");
    let show = |name: &str, r: &Rate| {
        let cpu = r.cpu.map_or("-".to_owned(), |c| format!("{c:.1}"));
        eprintln!("  {name:<34} {:>10.1} / {cpu:>10}", r.wall);
    };
    show("RS256 (RSA-2048) signatures", &rs256);
    show("ES256 (P-256) signatures", &es256);
    show("EdDSA (Ed25519) signatures", &eddsa);
    show(
        &format!(
            "argon2id m={} t={} p=1 verifications",
            login.argon2_memory_kib, login.argon2_iterations
        ),
        &argon2,
    );
    let json = |r: &Rate| serde_json::json!({"wall": r.wall, "cpu": r.cpu});
    println!(
        "BENCH_SIGN {}",
        serde_json::json!({
            "rs256": json(&rs256), "es256": json(&es256), "eddsa": json(&eddsa),
            "argon2": json(&argon2),
            "argon2_memory_kib": login.argon2_memory_kib,
            "argon2_iterations": login.argon2_iterations,
            "seconds": secs,
        })
    );
    Ok(())
}
