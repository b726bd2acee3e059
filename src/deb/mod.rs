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
