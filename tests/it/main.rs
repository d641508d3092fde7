//! One integration test binary: every module starts real servers on random ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
mod hybrid;
mod implicit;
mod logout;
mod machine;
mod multinode;
mod ops;
mod real_browser;
mod store;
mod wire;
