//! The kernel modules a path filter leaves out must not be ones that a
//! kept module needs: `[packages] path-exclude` can narrow the modules (as
//! profiles/base.toml does), and a kept module whose dependency went would
//! fail to load on the machine that needs it, long after the build. The
//! dependencies are each module's own `depends=` (its .modinfo, written by
//! the kernel's modpost), not depmod's modules.dep, which is computed from
//! the files that are there and so cannot name a missing one.
//!
//! The packages' file lists (var/lib/dpkg/info/*.list) still name the
//! filtered paths, so the left-out modules are known without a second
//! unpack; the kept ones are read (decompressed) only when some module
//! was left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::deb::PathFilter;
use crate::deb::archive::Compression;
use crate::error::bad_input;

/// Where dpkg keeps each package's file list (dpkg(1), FILES).
const DPKG_INFO: &str = "var/lib/dpkg/info";
/// The modules' folder (merged /usr: `/lib/modules` is the same place).
const MODULES: &str = "usr/lib/modules";
/// How many broken dependencies the error names.
const SHOWN: usize = 12;

/// A module's name as the kernel compares them: `-` and `_` are the same
/// (kmod's modname normalisation), the suffixes dropped.
fn module_name(file_name: &str) -> Option<String> {
    let (stem, _) = Compression::split_suffix(file_name);
    let stem = stem.strip_suffix(".ko")?;
    Some(stem.replace('-', "_"))
}

/// The modules `filter` left out of the tree: name -> packaged path.
fn left_out(tree: &Path, filter: &PathFilter) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let dir = tree.join(DPKG_INFO);
    let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for e in entries {
        let path = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|x| x != "list") {
            continue;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            if !line.contains("/modules/") || !filter.skips(line) {
                continue;
            }
            let name = line.rsplit('/').next().and_then(module_name);
            if let Some(name) = name {
                out.insert(name, line.to_owned());
            }
        }
    }
    Ok(out)
}

/// Every module file under `dir`, recursively.
fn module_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let kind = e.file_type()?;
        let path = e.path();
        if kind.is_dir() {
            module_files(&path, out)?;
        } else if kind.is_file() && module_name(&e.file_name().to_string_lossy()).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// The `depends=` of a module's .modinfo: names, normalised.
fn depends(path: &Path) -> Result<Vec<String>> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (_, codec) = Compression::split_suffix(&name);
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    codec
        .reader(BufReader::new(file))?
        .read_to_end(&mut bytes)
        .with_context(|| format!("decompressing {}", path.display()))?;
    Ok(modinfo_depends(&bytes))
}

/// .modinfo holds NUL-terminated `key=value` strings; `depends=` is there
/// once, empty for a module that needs none.
fn modinfo_depends(bytes: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = bytes.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let value = &bytes[at + KEY.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect()
}

/// Fails (bad input) when a kept module needs one that `filter` left out,
/// naming both, so that the profile lists one more path in
/// `path-include` or one more in `path-exclude`.
pub fn check(tree: &Path, filter: &PathFilter, jobs: usize) -> Result<()> {
    if filter.is_empty() {
        return Ok(());
    }
    let gone = left_out(tree, filter)?;
    if gone.is_empty() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    let mut files = Vec::new();
    module_files(&tree.join(MODULES), &mut files)?;
    let chunk = files.len().div_ceil(jobs.max(1)).max(1);
    let found: Vec<Result<Vec<(PathBuf, String)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let gone = &gone;
                s.spawn(move || -> Result<Vec<(PathBuf, String)>> {
                    let mut out = Vec::new();
                    for f in part {
                        for d in depends(f)? {
                            if gone.contains_key(&d) {
                                out.push((f.clone(), d));
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a module reader panicked")))
            })
            .collect()
    });
    let mut broken = BTreeSet::new();
    for part in found {
        for (file, dep) in part? {
            let kept = file
                .strip_prefix(tree)
                .unwrap_or(&file)
                .display()
                .to_string();
            broken.insert((kept, gone[&dep].clone()));
        }
    }
    if broken.is_empty() {
        tracing::info!(
            "path filter: {} kernel modules left out, none that the {} kept ones need \
             (checked in {:.1}s)",
            gone.len(),
            files.len(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let lines: Vec<String> = broken
        .iter()
        .take(SHOWN)
        .map(|(kept, dep)| format!("  /{kept} needs {dep}"))
        .collect();
    let more = broken.len().saturating_sub(SHOWN);
    Err(bad_input(format!(
        "[packages] path-exclude leaves out kernel modules that kept modules need \
         (each would fail to load): keep the needed one with path-include or leave \
         out the module that needs it too:\n{}{}",
        lines.join("\n"),
        if more > 0 {
            format!("\n  and {more} more")
        } else {
            String::new()
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A tree with three modules: `b` needs `a-core`, `c` needs nothing;
    /// the dpkg list names all three.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("usr/lib/modules/6.1.0-test/kernel");
        for (rel, info) in [
            (
                "sound/a-core.ko.xz",
                &b"\0license=GPL\0depends=\0name=a_core\0"[..],
            ),
            (
                "drivers/b.ko.xz",
                b"\x7fELF...\0author=x\0depends=a-core,c\0name=b\0",
            ),
            ("drivers/c.ko", b"\0depends=\0"),
        ] {
            let p = kernel.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let (_, codec) = Compression::split_suffix(rel);
            let bytes = match codec {
                Compression::Xz => xz(info),
                _ => info.to_vec(),
            };
            fs::write(p, bytes).unwrap();
        }
        let info = dir.path().join(DPKG_INFO);
        fs::create_dir_all(&info).unwrap();
        fs::write(
            info.join("linux-image-test.list"),
            "/usr/lib/modules/6.1.0-test/kernel/sound/a-core.ko.xz\n\
             /usr/lib/modules/6.1.0-test/kernel/drivers/b.ko.xz\n\
             /usr/lib/modules/6.1.0-test/kernel/drivers/c.ko\n",
        )
        .unwrap();
        dir
    }

    fn filter(exclude: &[&str], include: &[&str]) -> PathFilter {
        PathFilter::new(
            exclude.iter().map(|s| s.to_string()).collect(),
            include.iter().map(|s| s.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_kept_module_whose_dependency_is_left_out_is_bad_input() {
        let t = tree();
        // As the unpacker would have left it: a-core not written.
        fs::remove_file(
            t.path()
                .join("usr/lib/modules/6.1.0-test/kernel/sound/a-core.ko.xz"),
        )
        .unwrap();
        let err = check(
            t.path(),
            &filter(&["/usr/lib/modules/*/kernel/sound/*"], &[]),
            2,
        )
        .unwrap_err();
        assert!(crate::error::is_bad_input(&err));
        let msg = format!("{err:#}");
        assert!(
            msg.contains(
                "/usr/lib/modules/6.1.0-test/kernel/drivers/b.ko.xz needs \
                 /usr/lib/modules/6.1.0-test/kernel/sound/a-core.ko.xz"
            ),
            "{msg}"
        );
    }

    #[test]
    fn leaving_out_a_module_nobody_needs_or_its_users_too_passes() {
        let t = tree();
        let m = t.path().join("usr/lib/modules/6.1.0-test/kernel");
        fs::remove_file(m.join("drivers/c.ko")).unwrap();
        // c is needed by b: refused; with b left out too, fine.
        assert!(check(t.path(), &filter(&["/*/c.ko"], &[]), 1).is_err());
        fs::remove_file(m.join("drivers/b.ko.xz")).unwrap();
        check(t.path(), &filter(&["/*/c.ko", "/*/b.ko.xz"], &[]), 1).unwrap();
        // An include that keeps the module: nothing was left out.
        check(t.path(), &filter(&["/*/drivers/*"], &["/*/drivers/*"]), 1).unwrap();
        // No filter at all.
        check(t.path(), &PathFilter::default(), 1).unwrap();
    }

    #[test]
    fn modinfo_depends_parses_the_field() {
        assert_eq!(
            modinfo_depends(b"xx\0depends=snd-pcm,snd\0vermagic=6.1\0"),
            ["snd_pcm", "snd"]
        );
        assert!(modinfo_depends(b"\0depends=\0").is_empty());
        assert!(modinfo_depends(b"no modinfo here").is_empty());
        assert_eq!(
            module_name("snd-hda-core.ko.zst").as_deref(),
            Some("snd_hda_core")
        );
        assert_eq!(module_name("README"), None);
    }
}
