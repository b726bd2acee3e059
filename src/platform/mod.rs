//! What differs between the platforms an image is built for, and nothing
//! else: one rootfs tree, one /usr image and one ESP serve every platform
//! of a build (docs/platforms.md).
//!
//! - `oem`: the OEM partition of each platform: `oem-release`, the GRUB
//!   snippet with the platform's console and kernel arguments, and the
//!   profile's `[[platform.NAME.oem-file]]`s.
//! - `units`: what the shared tree carries for the platforms: the unit
//!   that brings the OEM partition's `run/` files into /run, and the
//!   condition that keeps a platform's own packages' units to that
//!   platform.
//!
//! The outputs each platform gets from its disk are `crate::outputs`'.

pub mod oem;
pub mod outputs;
pub mod units;

use crate::partition::Mib;
use crate::profile::Platform;

/// The kernel argument that names the platform (set by the OEM
/// partition's GRUB snippet); units of a platform's own packages carry
/// `ConditionKernelCommandLine=|craton.platform=NAME`.
pub const PLATFORM_ARG: &str = "craton.platform";

/// What a platform's disk size is rounded up to. GCE imports a disk.raw
/// whose size is a whole number of GiB ("Import an existing image":
/// the raw disk's size must be a multiple of 1 GB); the others take the
/// layout's own size (1 MiB aligned).
pub fn disk_multiple(platform: Platform) -> Mib {
    match platform {
        Platform::Gce => GCE_DISK_MULTIPLE,
        Platform::Qemu | Platform::Metal => Mib(1),
    }
}

/// Google Compute Engine's disk size unit.
pub const GCE_DISK_MULTIPLE: Mib = Mib(1024);
