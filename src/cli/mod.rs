//! The command line (clap derive): one file per subcommand. `main` starts
//! logging, dispatches, prints the error chain and maps it to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error;

mod build;
mod cache;
mod completions;
mod fetch;
mod inspect;
mod keygen;
mod lock;
mod man;
mod mark_good;
mod provision;
mod qemu;
mod rollback;
pub mod rootfs;
mod slot;
mod status;
mod update;
mod verify;

/// craton: build immutable, A/B-partitioned container-host OS images.
#[derive(Debug, Parser)]
#[command(name = "craton", version, about)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve a profile's packages and artifacts into craton.lock.
    Lock(lock::Args),
    /// Download and verify everything a profile's lock names into the cache.
    Fetch(fetch::Args),
    /// Build the profile's root filesystem tree into a folder.
    Rootfs(rootfs::Args),
    /// Build the profile's bootable A/B disk image.
    Build(build::Args),
    /// Boot a disk image in QEMU.
    Qemu(qemu::Args),
    /// Check a machine's first-boot Ignition config (`provision validate`).
    Provision(provision::Args),
    /// Make an Ed25519 key pair for signing builds (`build --key`).
    Keygen(keygen::Args),
    /// Check a build's output folder against its signed manifest.
    Verify(verify::Args),
    /// Show a raw image's partitions, A/B state, versions and root hashes.
    Inspect(inspect::Args),
    /// Read or change an image's A/B state offline.
    Slot(slot::Args),
    /// On a craton host: the booted slot, both slots' versions and states.
    Status(status::Args),
    /// On a craton host: install a signed build into the other slot.
    Update(update::Args),
    /// On a craton host: confirm the booted slot.
    MarkGood(mark_good::Args),
    /// On a craton host: boot the other slot next, if it is good.
    Rollback(rollback::Args),
    /// Show the cache, or remove what recent builds did not use.
    Cache(cache::Args),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completions(completions::Args),
    /// Print craton(1) on stdout, or write all manual pages into a folder.
    Man(man::Args),
    /// Internal: relay one guest connection, QEMU's stdin and stdout, to
    /// ADDR:PORT (`craton qemu --gce-metadata`).
    #[command(hide = true)]
    QemuGuestfwd(qemu::GuestfwdArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors too, which matches our bad input.
            return ExitCode::from(if e.use_stderr() {
                error::EXIT_BAD_INPUT
            } else {
                0
            });
        }
    };
    if let Command::QemuGuestfwd(a) = &cli.command {
        // Started by QEMU with the guest's connection as stdout and
        // stderr: no log, no error text, the default signal handling.
        return qemu::guestfwd(a);
    }
    init_logging(cli.verbose);
    if let Err(e) = crate::signal::install() {
        eprintln!("error: installing signal handlers: {e:#}");
        return ExitCode::from(error::EXIT_FAILURE);
    }
    let result = match cli.command {
        Command::Lock(a) => lock::run(a),
        Command::Fetch(a) => fetch::run(a),
        Command::Rootfs(a) => rootfs::run(a),
        Command::Build(a) => build::run(a),
        Command::Qemu(a) => qemu::run(a),
        Command::Provision(a) => provision::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Slot(a) => slot::run(a),
        Command::Status(a) => status::run(a),
        Command::Update(a) => update::run(a),
        Command::MarkGood(a) => mark_good::run(a),
        Command::Rollback(a) => rollback::run(a),
        Command::Cache(a) => cache::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
        Command::QemuGuestfwd(_) => unreachable!("dispatched before logging starts"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .try_init();
}
