//! Black-box tests of the real binary: crash safety, signals, `--help`, start-up errors, the
//! container health probe, what clients see on the wire, and memory per request.

mod access;
mod answers;
mod cli;
mod crash;
mod disk_full;
mod memory;
mod recovery;
mod retention_crash;
mod server;
