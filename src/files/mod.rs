//! File and tree helpers shared by every stage: nothing here knows what a
//! file means.
//!
//! - `temp`: temporary trees that are renamed into place or removed, and
//!   the mount check that keeps a removal from reaching a bound /dev.
//! - `atomic`: the one write-beside, fsync and rename of a file.
//! - `tree`: paths and writes confined to a tree that is not the running
//!   system (its absolute symlinks mean the tree's root).
//! - `cached`: a tree made once per key and reused by later builds.
//! - `bounded`: reading a stream into memory with an upper bound, and
//!   where a seek lands in a device of known length.

pub mod atomic;
pub mod bounded;
pub mod cached;
pub mod temp;
pub mod tree;

pub use atomic::{RELEASE_MODE, TempFile, move_into_place, write_atomic};
pub use bounded::{read_bounded, seek_target};
pub use cached::{CachedTree, cached_tree};
pub use temp::{TempTree, discard, mounts_below, remove_tree};
