//! craton: an immutable container-host OS image builder.
//!
//! The library holds all logic; `src/main.rs` only calls [`cli::main`]. The
//! folders are the pipeline, and `build` is its recipe: profile -> resolve
//! -> fetch -> tools -> rootfs -> usr -> initrd -> boot -> disk
//! (docs/architecture.md describes each stage and the shared modules).

pub mod boot;
pub mod build;
pub mod cache;
pub mod cli;
pub mod context;
pub mod deb;
pub mod digest;
pub mod disk;
pub mod error;
pub mod fetch;
pub mod files;
pub mod http;
pub mod initrd;
pub mod inspect;
pub mod lock;
pub mod manifest;
pub mod outputs;
pub mod partition;
pub mod payload;
pub mod platform;
pub mod process;
pub mod profile;
pub mod provision;
pub mod qcow2;
pub mod qemu;
pub mod repo;
pub mod resolve;
pub mod rootfs;
pub mod sbom;
pub mod sign;
pub mod signal;
pub mod tools;
pub mod update;
pub mod usr;
