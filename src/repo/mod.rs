//! The Debian archive client: which mirror to use (`sources`, `mirror`), the
//! signed Release file (`keyring`, `release`, `date`), the Packages indexes
//! (`index`, `deb822`, `packages`, `relations`), dpkg's version ordering
//! (`version`) and the dependency solver (`universe`, `solver`). Nothing unverified leaves
//! this module: InRelease is
//! checked with OpenPGP, each Packages index against the Release SHA256 list.

pub mod date;
pub mod deb822;
pub mod index;
pub mod keyring;
pub mod mirror;
pub mod packages;
pub mod relations;
pub mod release;
pub mod solver;
pub mod sources;
#[cfg(test)]
mod testkeys;
pub mod universe;
pub mod version;
