//! Black-box tests of the real binary: crash safety, signals, `--help`, start-up errors, the
//! container health probe, and what clients see on the wire.

mod access;
mod answers;
mod cli;
mod crash;
mod disk_full;
mod recovery;
mod retention_crash;
mod server;
