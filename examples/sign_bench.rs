//! The ceilings the token and login benchmarks are compared against: raw RS256 (RSA-2048),
//! ES256 (P-256) and Ed25519 signatures per second with aws-lc-rs, and argon2id password
//! verifications per second at the parameters of a Latchkey config, all on one thread.
//!
//!   cargo build --release --example sign_bench
//!   taskset -c 0 target/release/examples/sign_bench [--config FILE] [--seconds 3]
//!
//! Pin it to the core the server runs on (bench/run.sh does): the limit of interest is what
//! that one core can do. Prints a human table on stderr and one line
//! `BENCH_SIGN {json}` on stdout for bench/run.py.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use latchkey::config::{Config, LoginSettings};
use latchkey::crypto::password::{hash_with, verify_sync};

/// A signing input the size of a client_credentials access token's header.payload, so the
/// SHA-256 part of the work is the same as the server's (it is tiny next to the signature).
const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IkFCQ0RFRkdISUpLTCJ9.\
eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAiLCJzdWIiOiJiZW5jaC1yczI1NiIsImF1ZCI6Imh0dHA6Ly8xMjcu\
MC4wLjE6ODA4MCIsImV4cCI6MTcwMDAwMDYwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJBQkNERUZHSElKS0xNTk9Q\
UVJTVFVWIiwiY2xpZW50X2lkIjoiYmVuY2gtcnMyNTYiLCJzY29wZSI6ImFwaS5yZWFkIn0";

/// Run `op` repeatedly for about `secs` and return operations per second. Checks the clock
/// every op: even the fastest op here (Ed25519, ~20 µs) dwarfs an `Instant::now()`.
fn rate(secs: f64, mut op: impl FnMut()) -> f64 {
    // A short untimed warm-up brings caches and the CPU clock to their steady state.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        op();
    }
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while start.elapsed() < limit {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let mut config: Option<PathBuf> = None;
    let mut secs = 3.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--seconds" => secs = args.next().and_then(|s| s.parse().ok()).unwrap_or(secs),
            _ => anyhow::bail!("usage: sign_bench [--config FILE] [--seconds N]"),
        }
    }
    // The argon2 parameters are the config's, read the way the server reads them
    // (environment overrides included), so the login target compares like with like.
    let login = match &config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?.0.login,
        None => LoginSettings::default(),
    };

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

    eprintln!("one thread, {secs} s each:");
    eprintln!("  RS256 (RSA-2048)  {rs256:>10.0} signatures/s");
    eprintln!("  ES256 (P-256)     {es256:>10.0} signatures/s");
    eprintln!("  EdDSA (Ed25519)   {eddsa:>10.0} signatures/s");
    eprintln!(
        "  argon2id m={} KiB t={} p=1  {argon2:>6.1} verifications/s",
        login.argon2_memory_kib, login.argon2_iterations
    );
    println!(
        "BENCH_SIGN {}",
        serde_json::json!({
            "rs256": rs256.round(), "es256": es256.round(), "eddsa": eddsa.round(),
            "argon2": (argon2 * 10.0).round() / 10.0,
            "argon2_memory_kib": login.argon2_memory_kib,
            "argon2_iterations": login.argon2_iterations,
            "seconds": secs,
        })
    );
    Ok(())
}
