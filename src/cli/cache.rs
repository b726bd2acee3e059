//! `craton cache status` and `craton cache gc`: what the cache
//! ($CRATON_CACHE or ~/.cache/craton) holds, and removing what the recent
//! builds did not use (`crate::cache::gc`).

use anyhow::Result;

use crate::cache::{Cache, gc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Show the cache's files, trees (with their size and last use) and
    /// partial downloads.
    Status,
    /// Remove the trees beyond the most recently used of each kind, the
    /// files no kept build used, and stale partial downloads.
    Gc {
        /// How many trees of each kind (base, tools) to keep.
        #[arg(long, default_value_t = 2, value_name = "N")]
        keep: usize,
    },
}

pub fn run(args: Args) -> Result<()> {
    let cache = Cache::open_default()?;
    match args.command {
        CacheCommand::Status => print!("{}", gc::status_text(&gc::survey(&cache)?)),
        CacheCommand::Gc { keep } => {
            let r = gc::gc(&cache, keep)?;
            for t in &r.trees {
                println!("removed {}", t.display());
            }
            println!(
                "removed {} trees, {} files and {} partial downloads: {:.1} MiB freed",
                r.trees.len(),
                r.files,
                r.partial,
                r.bytes as f64 / (1024.0 * 1024.0)
            );
        }
    }
    Ok(())
}
