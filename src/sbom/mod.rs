//! sbom.spdx.json: the software bill of materials of an image, an SPDX 2.3
//! JSON document.
//!
//! It lists every Debian package of the image, the initrd and the tools
//! tree, one per .deb (name, version, the Debian maintainer as supplier,
//! the pool path, sha256, a purl, and the licenses Debian's
//! machine-readable copyright file declares), and every artifact (its URL
//! and sha256), with their relationships: the image CONTAINS its packages,
//! its artifacts and the initrd, the initrd CONTAINS its packages, the tools
//! tree CONTAINS its own and is BUILD_TOOL_OF the image. No mirror host is
//! written anywhere; the same lock, image name, version and
//! SOURCE_DATE_EPOCH give the same bytes.
//!
//! - `debs`: what is read from each .deb and from the rootfs tree.
//! - `dep5`: the machine-readable copyright file.
//! - `license`: Debian's license names as SPDX expressions.
//! - `document`: the document from those facts (pure).
//! - `spdx`: the SPDX 2.3 JSON types.
//!
//! It does not describe files (filesAnalyzed is false for every package),
//! copy copyright texts beyond the licenses SPDX does not list, or sign
//! anything: the manifest lists this file's digest and its signature
//! covers it.

mod debs;
mod dep5;
mod document;
mod license;
mod spdx;

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

pub use debs::{DebFacts, Facts, gather};
pub use document::{Image, document};
pub use spdx::Document;

use crate::context::Build;
use crate::digest::Sha256;
use crate::rootfs::RootfsTree;

/// The SBOM's name in the output folder.
pub const SBOM_FILE: &str = "sbom.spdx.json";
/// manifest.json's kind of the SBOM (`outputs[].kind`).
pub const KIND_SBOM: &str = "sbom-spdx-json";

/// The SBOM as written: for the manifest's list of outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomFile {
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
}

/// The stage: reads the facts of every locked .deb (the image's copyright
/// files from `tree`) and writes `<out>/sbom.spdx.json` atomically.
pub fn run(b: &Build, tree: &RootfsTree) -> Result<SbomFile> {
    let start = Instant::now();
    let facts = gather(&b.lock, b.cache(), Some(&tree.path), b.jobs())?;
    let profile = b.profile();
    let image = Image {
        name: &profile.image.name,
        version: &profile.image.version,
        epoch: b.epoch,
    };
    let doc = document(&image, &b.lock, &facts);
    let bytes = doc.to_bytes()?;
    let path = b.out_dir.join(SBOM_FILE);
    crate::files::write_atomic(&path, &bytes, crate::files::RELEASE_MODE)?;
    tracing::info!(
        "wrote {} ({} packages) in {:.1}s",
        path.display(),
        doc.packages.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(SbomFile {
        path,
        sha256: Sha256::of(&bytes),
        size: bytes.len() as u64,
    })
}
