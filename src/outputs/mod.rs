//! The formats a built disk image is shipped in, as library pieces the
//! outputs stage puts together: nothing here knows about profiles or
//! platforms, only bytes in and bytes out, each the same for the same input
//! whatever the machine (filesystem, number of cores).
//!
//! - `sparse_tar`: a GNU tar with the image as its one sparse member (GCE
//!   image import wants `disk.raw` alone in a `.tar.gz`).
//! - `pgzip`: a gzip writer that compresses blocks on several threads into
//!   one gzip member whose bytes do not depend on the number of threads.
//! - `zst`: a zstd file through zstd's own threads, written beside its
//!   final name and renamed into place.

pub mod pgzip;
pub mod sparse_tar;
pub mod zst;

pub use pgzip::ParGz;
pub use sparse_tar::write_sparse_tar;
pub use zst::compress_zstd;
