//! `craton rootfs PROFILE --out DIR`: the OS tree, for inspection and tests
//! (the same stages as the start of `craton build`: resolve, fetch, rootfs).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::fetch::FetchArgs;
use crate::context::{Build, Context, Target};
use crate::error::bad_input;
use crate::files::TempTree;
use crate::{fetch, resolve, rootfs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Where to write the tree (a tree craton wrote there before is
    /// replaced; any other existing folder is refused).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// The file craton leaves at the top of every tree `craton rootfs` writes.
/// An existing `--out` folder is replaced only when it holds this file (or
/// is empty): replacing means removing the old folder, and `--out ~` once
/// removed a home folder.
pub const TREE_MARKER: &str = ".craton-rootfs";

/// Refuses an `--out` that is not a folder craton may replace.
fn check_out(out: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
    };
    if !meta.is_dir() {
        return Err(bad_input(format!(
            "--out {}: exists and is not a folder; craton writes the tree there and \
             replaces only a tree it wrote",
            out.display()
        )));
    }
    let empty = fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .next()
        .is_none();
    if !empty && !out.join(TREE_MARKER).is_file() {
        return Err(bad_input(format!(
            "--out {}: the folder exists and craton did not write it (it has no \
             {TREE_MARKER}); craton would replace it, removing what it holds: name a \
             new folder or remove this one yourself",
            out.display()
        )));
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    if args.out.file_name().is_none() {
        bail!("--out {}: names no folder", args.out.display());
    }
    check_out(&args.out)?;
    let ctx = Context::new(&args.fetch.options(&args.profile))?;
    let lock = resolve::run(&ctx)?;
    fetch::run(&ctx, &lock)?;
    // The build's work folder sits beside DIR, so the tree is renamed into
    // place at the end; platforms do not change the tree.
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty());
    let target = Target {
        platforms: Vec::new(),
        out_dir: parent.map_or_else(|| PathBuf::from("."), PathBuf::from),
        epoch: crate::build::epoch_from_env()?,
    };
    let b = Build::new(ctx, lock, &target)?;
    let tree = rootfs::run(&b)?;
    fs::write(
        tree.path.join(TREE_MARKER),
        "A tree written by `craton rootfs`: a later run with this --out replaces it.\n",
    )
    .with_context(|| format!("writing {}", tree.path.join(TREE_MARKER).display()))?;
    // Again: the folder may have appeared while the tree was built.
    check_out(&args.out)?;
    TempTree::adopt(tree.path.clone()).persist(&args.out)?;
    println!(
        "{}: root filesystem ({} base tree)",
        args.out.display(),
        if tree.base_reused { "cached" } else { "new" }
    );
    Ok(())
}
