//! The rootfs stage: from the locked .debs to the OS tree that later stages
//! split into the /usr image and the ROOT skeleton.
//!
//!   unpack (`crate::deb`, native, parallel) -> register as unpacked
//!   (`crate::deb::dpkgdb`)
//!   -> configure (dpkg in a chroot, essential first), the path filter's
//!   modules checked (`modules`) = the base tree (cached)
//!   -> customize (artifacts, overlays, files, units, users, os-release)
//!   -> layout (immutable /usr: /etc to the factory, empty /var)
//!
//! It does not make filesystems or images (see `usr`, `disk`).

pub mod chroot;
pub mod configure;
pub mod customize;
pub mod layout;
pub mod modules;
pub mod order;
pub mod stage;
pub mod stamps;

pub use stage::{RootfsTree, run};
