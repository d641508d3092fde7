//! One integration test binary: every module starts real servers on random ports. Its runner
//! is `harness::main` (`harness = false`), so a test that cannot run here is counted as
//! ignored instead of passing unseen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod attack;
mod backchannel;
mod browser;
mod cli;
mod code_flow;
mod common;
mod demo;
mod device;
mod eviction;
mod exhaustion;
mod explore;
mod flows;
mod harness;
mod hybrid;
mod implicit;
mod logout;
mod machine;
mod mfa;
mod multinode;
mod ops;
mod passkey;
mod real_browser;
mod soft_authenticator;
mod store;
mod wire;

fn main() -> std::process::ExitCode {
    harness::main()
}
