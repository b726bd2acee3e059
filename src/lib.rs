//! craton: an immutable container-host OS image builder.
//!
//! The library holds all logic; `src/main.rs` only parses the command line and
//! dispatches. The folders are the pipeline (see ../shared/DESIGN.md):
//! profile -> repo (resolve) -> lock -> fetch -> ... later stages.

pub mod boot;
pub mod build;
pub mod cli;
pub mod context;
pub mod digest;
pub mod disk;
pub mod error;
pub mod fetch;
pub mod http;
pub mod initrd;
pub mod lock;
pub mod process;
pub mod profile;
pub mod qemu;
pub mod repo;
pub mod resolve;
pub mod rootfs;
pub mod signal;
pub mod tools;
pub mod usr;
