//! Debian's binary package format, shared by every stage that installs
//! packages (the rootfs tree, the initrd, the tools tree).
//!
//! - `archive`: reads a .deb (ar with control.tar and data.tar, any of
//!   Debian's compressions).
//! - `unpack`: unpacks .debs natively into a tree, in parallel, as
//!   `dpkg --unpack` leaves files.
//! - `filter`: dpkg-style path excludes and includes for unpacking.
//! - `dpkgdb`: registers unpacked packages in dpkg's database, so that
//!   `dpkg --configure` can take over.
//!
//! Nothing here runs maintainer scripts or chooses packages: that is the
//! rootfs stage's and the resolver's.

pub mod archive;
pub mod dpkgdb;
pub mod filter;
pub mod unpack;

pub use archive::Deb;
pub use filter::PathFilter;
pub use unpack::{DebInput, unpack_all, unpack_filtered};

/// Builds `deb` from `root` (a package tree with DEBIAN/control) with the
/// host's dpkg-deb, gzip-compressed; `flags` go before `--build` (tests).
#[cfg(test)]
pub(crate) fn dpkg_deb_build(root: &std::path::Path, deb: &std::path::Path, flags: &[&str]) {
    let out = std::process::Command::new("dpkg-deb")
        .args(flags)
        .args(["-Zgzip", "--build"])
        .arg(root)
        .arg(deb)
        .output()
        .expect("running dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb --build {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
