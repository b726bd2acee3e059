//! A tree made once and kept for later builds, at a place named after what
//! it is made from (the base tree of the locked packages, the tools tree):
//! made in a temporary tree beside its place and renamed into it only when
//! complete, so a killed build never leaves a half tree to be reused.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::TempTree;

/// A cached tree and whether this run found it (rather than made it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTree {
    pub path: PathBuf,
    pub reused: bool,
}

/// The tree at `place`, made by `make` (given an empty folder) if missing.
pub fn cached_tree(place: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<CachedTree> {
    if place.is_dir() {
        return Ok(CachedTree {
            path: place.to_owned(),
            reused: true,
        });
    }
    let tmp = TempTree::beside(place)?;
    make(tmp.path())?;
    tmp.persist(place)?;
    Ok(CachedTree {
        path: place.to_owned(),
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_reused_and_never_half() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join("trees/x-1");
        let failed = cached_tree(&place, |_| anyhow::bail!("no"));
        assert!(failed.is_err());
        assert!(!place.exists());
        let made = cached_tree(&place, |t| Ok(std::fs::write(t.join("f"), "1")?)).unwrap();
        assert!(!made.reused);
        let again = cached_tree(&place, |_| unreachable!("made already")).unwrap();
        assert!(again.reused);
        assert_eq!(std::fs::read_to_string(place.join("f")).unwrap(), "1");
        assert_eq!(
            std::fs::read_dir(dir.path().join("trees")).unwrap().count(),
            1
        );
    }
}
