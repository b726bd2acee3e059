//! Customisation of a configured tree (dpkg has run): what the profile adds
//! on top of the packages, written natively on the files, in this order:
//!
//!  0. secrets: what the maintainer scripts made that is each machine's own
//!     (SSH host keys, private keys, random seeds, the D-Bus machine id)
//!     is removed, before the profile adds anything;
//!  1. artifacts: files taken from pinned downloads in the cache;
//!  2. overlays: folders copied over the tree, in profile order;
//!  3. inline `[[file]]`s;
//!  4. users and groups: a sysusers.d fragment, applied to /etc now;
//!  5. units: enable, disable, mask, and default.target, as
//!     `systemctl --root` would; then the units of packages only some
//!     platforms list get their platform condition (`crate::platform`);
//!  6. identity: host name, an empty machine-id, os-release, root locked.
//!
//! It runs no command and needs no chroot: the tree is only files here.
//! Moving /etc to the factory and emptying /var is `layout`'s job, after
//! this.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cache::Cache;
use crate::files::tree;
use crate::profile::Profile;

mod artifacts;
mod identity;
mod overlay;
mod secrets;
mod units;
mod users;

pub use identity::{OS_RELEASE, ROOT_LOCKED};
pub use secrets::refuse_private_keys;
pub use units::UNIT_VENDOR_DIR;
pub use users::{SYSTEM_ID_MAX, SYSTEM_ID_MIN, SYSUSERS_FRAGMENT};

/// Applies `profile` to the configured `tree`. `build_id` becomes
/// os-release's BUILD_ID (the caller derives it from the lock digest).
pub fn customize(tree: &Path, profile: &Profile, cache: &Cache, build_id: &str) -> Result<()> {
    let step = |what: &str| format!("customizing {}: {what}", tree.display());
    secrets::scrub(tree).with_context(|| step("secrets"))?;
    artifacts::install(tree, &profile.artifacts, cache).with_context(|| step("artifacts"))?;
    for dir in &profile.system.overlays {
        overlay::copy(dir, tree).with_context(|| step(&format!("overlay {}", dir.display())))?;
    }
    for f in &profile.files {
        tree::write_file(tree, &f.path, f.content.as_bytes(), f.mode)
            .with_context(|| step(&format!("file {}", f.path)))?;
    }
    users::apply(tree, &profile.users, &profile.groups).with_context(|| step("users"))?;
    units::apply(tree, &profile.units, &profile.system.default_target)
        .with_context(|| step("units"))?;
    crate::platform::units::condition(tree, &profile.platform_only_packages())
        .with_context(|| step("platform units"))?;
    identity::apply(tree, profile, build_id).with_context(|| step("identity"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::digest::Sha256;

    const WAIT_ONLINE_LINK: &str =
        "etc/systemd/system/multi-user.target.wants/systemd-networkd-wait-online.service";

    /// The test profile (stand-in artifacts) over a tree with the unit
    /// files its [units] name, then the layout: what the integration test
    /// will check on a real tree, on a small one.
    #[test]
    fn the_test_profile_customizes_a_small_tree() {
        let profile = crate::profile::load(Path::new("tests/container-host-test.toml")).unwrap();
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path().join("cache")).unwrap();
        for a in &profile.artifacts {
            let src = a.url.strip_prefix("file://").unwrap();
            let bytes = fs::read(src).unwrap();
            assert_eq!(Sha256::of(&bytes), a.sha256);
            fs::write(cache.path_of(&a.sha256), bytes).unwrap();
        }
        let tree = t.path().join("tree");
        let units = tree.join("usr/lib/systemd/system");
        fs::create_dir_all(&units).unwrap();
        for u in [
            "docker.service",
            "ssh.service",
            "systemd-networkd.service",
            "systemd-resolved.service",
            "systemd-timesyncd.service",
            "systemd-networkd-wait-online.service",
        ] {
            fs::write(units.join(u), "[Install]\nWantedBy=multi-user.target\n").unwrap();
        }
        for u in ["docker.socket", "ssh.socket"] {
            fs::write(units.join(u), "[Install]\nWantedBy=sockets.target\n").unwrap();
        }
        // Enabled by their packages, as docker.io's and openssh's postinsts do.
        for (u, wanted_by) in [
            ("containerd.service", "multi-user.target"),
            ("sshd-keygen.service", "ssh.socket"),
            ("apt-daily.timer", "timers.target"),
            ("apt-daily-upgrade.timer", "timers.target"),
            ("dpkg-db-backup.timer", "timers.target"),
        ] {
            fs::write(units.join(u), format!("[Install]\nWantedBy={wanted_by}\n")).unwrap();
            let wants = tree.join(format!("etc/systemd/system/{wanted_by}.wants"));
            fs::create_dir_all(&wants).unwrap();
            std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{u}"), wants.join(u))
                .unwrap();
        }
        fs::write(units.join("multi-user.target"), "[Unit]\n").unwrap();
        let link = tree.join(WAIT_ONLINE_LINK);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/systemd-networkd-wait-online.service",
            &link,
        )
        .unwrap();
        fs::create_dir_all(tree.join("etc")).unwrap();
        fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        fs::write(tree.join("etc/group"), "root:x:0:\n").unwrap();
        fs::write(tree.join("etc/shadow"), "root:*:20000:0:99999:7:::\n").unwrap();
        for (l, target) in crate::rootfs::layout::SKELETON_LINKS {
            std::os::unix::fs::symlink(target, tree.join(l)).unwrap();
        }

        // gce's agent, as dpkg lists its files (the unit in the tree).
        fs::write(
            units.join("google-guest-agent.service"),
            "[Install]\nWantedBy=multi-user.target\n",
        )
        .unwrap();
        let info = tree.join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        fs::write(
            info.join("google-guest-agent.list"),
            "/usr/lib/systemd/system/google-guest-agent.service\n/usr/bin/google_guest_agent\n",
        )
        .unwrap();

        customize(&tree, &profile, &cache, "test-build").unwrap();
        let read = |p: &str| fs::read_to_string(tree.join(p)).unwrap();
        // Only on gce: the platform package's unit has the condition.
        assert!(
            read("usr/lib/systemd/system/google-guest-agent.service.d/50-craton-platform.conf")
                .contains("ConditionKernelCommandLine=|craton.platform=gce\n")
        );
        assert!(read("usr/bin/rkt").contains("stand-in"));
        assert!(read("usr/lib/systemd/system/flanneld.service").contains("Type=notify"));
        assert!(read("usr/lib/systemd/network/80-craton-dhcp.network").contains("DHCP=yes"));
        // docker and sshd are socket-activated; their services, the host
        // key generation and apt's timers are not enabled.
        let system = tree.join("etc/systemd/system");
        for socket in ["docker.socket", "ssh.socket"] {
            assert_eq!(
                fs::read_link(system.join("sockets.target.wants").join(socket)).unwrap(),
                Path::new("/usr/lib/systemd/system").join(socket)
            );
        }
        for link in [
            "multi-user.target.wants/docker.service",
            "multi-user.target.wants/containerd.service",
            "multi-user.target.wants/ssh.service",
            "ssh.socket.wants/sshd-keygen.service",
            "timers.target.wants/apt-daily.timer",
            "timers.target.wants/dpkg-db-backup.timer",
        ] {
            assert!(system.join(link).symlink_metadata().is_err(), "{link}");
        }
        assert!(read("etc/group").contains("\ndocker:x:999:\nrkt:x:998:\nrkt-admin:x:997:\n"));
        // flanneld is enabled (its condition decides at boot); the wait for
        // "online", enabled here as a maintainer script might, is not.
        assert!(
            tree.join("etc/systemd/system/multi-user.target.wants/flanneld.service")
                .symlink_metadata()
                .is_ok()
        );
        assert!(
            tree.join(WAIT_ONLINE_LINK).symlink_metadata().is_err(),
            "systemd-networkd-wait-online is still enabled"
        );
        assert!(read("usr/lib/os-release").contains("IMAGE_ID=container-host-test\n"));
        assert!(read("etc/shadow").starts_with("root:!*:"));

        crate::rootfs::layout::make_immutable(&tree).unwrap();
        assert!(crate::rootfs::layout::outside_usr(&tree).is_empty());
        assert!(read("usr/share/factory/etc/flannel/options.env.example").contains("FLANNELD_"));
    }
}
