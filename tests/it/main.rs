//! One integration test binary: every module starts real servers on random ports.

mod browser;
mod code_flow;
mod common;
