//! Turning lock entries into fetch [`Item`]s. Which mirror serves a
//! package's repository is the caller's decision (`repo::mirror`); here a
//! mirror URL is joined with the pool path, and an artifact's file name for
//! the artifact directory is taken from its URL.

use super::{Item, Origin};
use crate::lock::{LockedArtifact, LockedPackage};

impl Item {
    /// A locked package, served by `mirror` (the archive root, e.g. the URL
    /// that apt's sources name for its repository).
    pub fn package(pkg: &LockedPackage, mirror: &str) -> Self {
        let label = match pkg.filename.rsplit('/').next() {
            Some(base) if !base.is_empty() => base.to_owned(),
            _ => pkg.name.clone(),
        };
        Self {
            label,
            url: format!(
                "{}/{}",
                mirror.trim_end_matches('/'),
                pkg.filename.trim_start_matches('/')
            ),
            sha256: pkg.sha256,
            size: Some(pkg.size),
            origin: Origin::Package,
        }
    }

    /// A locked artifact; its file in `--artifact-dir` is the URL's last
    /// path segment (or the artifact's name when the URL has none).
    pub fn artifact(a: &LockedArtifact) -> Self {
        // Query and fragment are not part of a downloaded file's name.
        let path = a.url.split(['?', '#']).next().unwrap_or_default();
        let file_name = url_basename(path).unwrap_or(&a.name).to_owned();
        Self {
            label: format!("artifact {}", a.name),
            url: a.url.clone(),
            sha256: a.sha256,
            size: None,
            origin: Origin::Artifact {
                name: a.name.clone(),
                file_name,
            },
        }
    }
}

/// A URL's last non-empty path segment; none for a bare "https://host".
fn url_basename(path: &str) -> Option<&str> {
    let (head, last) = path.rsplit_once('/')?;
    (!last.is_empty() && !head.ends_with('/') && !head.is_empty()).then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256;

    fn locked_package(filename: &str) -> LockedPackage {
        LockedPackage {
            name: "systemd".into(),
            version: "257.9-1".into(),
            arch: "amd64".into(),
            repository: "debian".into(),
            suite: "trixie".into(),
            filename: filename.into(),
            size: 42,
            sha256: Sha256::of(b"deb"),
        }
    }

    #[test]
    fn package_url_joins_mirror_and_pool_path() {
        let pkg = locked_package("pool/main/s/systemd/systemd_257.9-1_amd64.deb");
        let item = Item::package(&pkg, "http://mirror.test/debian/");
        assert_eq!(
            item.url,
            "http://mirror.test/debian/pool/main/s/systemd/systemd_257.9-1_amd64.deb"
        );
        assert_eq!(item.label, "systemd_257.9-1_amd64.deb");
        assert_eq!((item.size, item.sha256), (Some(42), pkg.sha256));
        assert_eq!(item.origin, Origin::Package);
    }

    #[test]
    fn artifact_file_name_comes_from_the_url() {
        let mut a = LockedArtifact {
            name: "rkt".into(),
            url: "https://releases.test/rkt/v1.30.0/rkt-v1.30.0.tar.gz?download=1".into(),
            sha256: Sha256::of(b"tgz"),
        };
        let item = Item::artifact(&a);
        assert_eq!(item.label, "artifact rkt");
        assert_eq!(item.size, None);
        let want = Origin::Artifact {
            name: "rkt".into(),
            file_name: "rkt-v1.30.0.tar.gz".into(),
        };
        assert_eq!(item.origin, want);

        a.url = "https://releases.test/".into();
        let Origin::Artifact { file_name, .. } = Item::artifact(&a).origin else {
            panic!("an artifact item");
        };
        assert_eq!(file_name, "rkt");
    }
}
