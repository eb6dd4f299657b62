//! Black-box tests of the real binary: crash safety, signals, configuration errors, the
//! container health probe.

mod access;
mod cli;
mod crash;
mod server;
