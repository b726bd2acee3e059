//! Step 2: overlays. A folder's tree is copied over the image tree: folders
//! merge, files and symlinks replace what is there, permission bits are
//! kept (git keeps only the executable bit, so an overlay in git has 0644
//! and 0755 files), everything is owned by root.
//!
//! Symlinks are copied as links, never followed; a folder that already
//! exists in the tree keeps its mode and owner.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::files::tree;

/// Copies the tree under `src` over `tree`.
pub fn copy(src: &Path, tree: &Path) -> Result<()> {
    copy_dir(src, tree, "")
}

fn copy_dir(src: &Path, tree: &Path, rel: &str) -> Result<()> {
    let dir = src.join(rel.trim_start_matches('/'));
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    // Sorted, so a failure is reported at the same place every time.
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            bail!("{}: file name is not UTF-8", e.path().display());
        };
        let path = format!("{rel}/{name}");
        let meta = fs::symlink_metadata(e.path())
            .with_context(|| format!("reading {}", e.path().display()))?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(e.path())
                .with_context(|| format!("reading link {}", e.path().display()))?;
            tree::symlink(tree, &path, &target.to_string_lossy())?;
        } else if meta.is_dir() {
            let existed = tree::resolve_dir(tree, &path, false).is_ok();
            let host = tree::resolve_dir(tree, &path, true)?;
            if !existed {
                tree::set_mode_root(&host, mode)?;
            }
            copy_dir(src, tree, &path)?;
        } else if meta.is_file() {
            let bytes =
                fs::read(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
            tree::write_file(tree, &path, &bytes, mode)?;
        } else {
            bail!("{}: not a file, folder or symlink", e.path().display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn files_links_and_modes_are_copied_over() {
        let t = tempfile::tempdir().unwrap();
        let (src, tree) = (t.path().join("overlay"), t.path().join("tree"));
        fs::create_dir_all(src.join("usr/lib/systemd/system")).unwrap();
        fs::create_dir_all(src.join("etc/flannel")).unwrap();
        fs::write(src.join("usr/lib/systemd/system/a.service"), "[Unit]\n").unwrap();
        fs::write(src.join("etc/flannel/options.env"), "X=1\n").unwrap();
        fs::set_permissions(src.join("etc/flannel"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::create_dir_all(src.join("usr/libexec")).unwrap();
        fs::write(src.join("usr/libexec/run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            src.join("usr/libexec/run"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("../lib/systemd/system/a.service", src.join("usr/libexec/a")).unwrap();
        // The tree already has /etc (0755) with a file that is replaced.
        fs::create_dir_all(tree.join("etc/flannel")).unwrap();
        fs::write(tree.join("etc/flannel/options.env"), "old").unwrap();
        fs::write(tree.join("etc/keep"), "keep").unwrap();

        copy(&src, &tree).unwrap();
        let mode = |p: &str| {
            fs::symlink_metadata(tree.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(
            fs::read_to_string(tree.join("etc/flannel/options.env")).unwrap(),
            "X=1\n"
        );
        assert_eq!(fs::read_to_string(tree.join("etc/keep")).unwrap(), "keep");
        assert_eq!(
            mode("etc/flannel"),
            0o755,
            "an existing folder keeps its mode"
        );
        assert_eq!(mode("usr/libexec/run"), 0o755);
        assert_eq!(mode("usr/lib/systemd/system/a.service"), 0o644);
        assert_eq!(
            fs::read_link(tree.join("usr/libexec/a")).unwrap(),
            Path::new("../lib/systemd/system/a.service")
        );
    }
}
