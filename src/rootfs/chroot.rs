//! Running programs inside a tree, isolated from the host.
//!
//! dpkg and the maintainer scripts it runs come from the network and run as
//! root. Each runs in new mount, PID, UTS and IPC namespaces (util-linux's
//! `unshare`, which makes every mount private): a new /proc of the new PID
//! namespace, a read-only sysfs and a private /dev (a tmpfs with null, zero,
//! full, random, urandom and tty, a new devpts instance and the usual
//! links, as mmdebstrap makes) are mounted in the tree inside that
//! namespace only, then `chroot` runs the program as the namespace's PID 1.
//! So a script sees no host process (/proc/1/root is the tree), no host
//! device, cannot set the host's hostname, and nothing it mounts is
//! visible to the host. When the program ends, the kernel kills whatever
//! it left running and the mounts go with the namespace; a craton killed
//! by SIGKILL takes `unshare` with it (the process wrapper's parent-death
//! signal), and `unshare --kill-child` takes the rest. No mount is ever left in the
//! host's namespace for a guard to undo or a recursive delete to cross.

use std::path::Path;

use crate::process::Cmd;

/// The setup run by the host's /bin/sh as PID 1 of the new namespaces,
/// before it becomes `chroot TREE PROGRAM ARGS...` ($1 is the tree). The
/// mount points must be real folders of the tree: a symlink could point
/// the mount anywhere in the (private) namespace, which the chroot would
/// then not see.
const SETUP: &str = r#"set -eu
t=$1
shift
for d in proc sys dev; do
    if [ -L "$t/$d" ] || { [ -e "$t/$d" ] && [ ! -d "$t/$d" ]; }; then
        echo "craton-chroot: $t/$d is not a folder" >&2
        exit 1
    fi
    mkdir -p "$t/$d"
done
mount -t proc -o nosuid,nodev,noexec proc "$t/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$t/sys"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=16m tmpfs "$t/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    name=${n%%:*}
    mm=${n#*:}
    mknod -m 0666 "$t/dev/$name" c "${mm%%:*}" "${mm#*:}"
done
mkdir -m 0755 "$t/dev/pts"
mkdir -m 1777 "$t/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$t/dev/pts"
ln -s pts/ptmx "$t/dev/ptmx"
ln -s /proc/self/fd "$t/dev/fd"
ln -s /proc/self/fd/0 "$t/dev/stdin"
ln -s /proc/self/fd/1 "$t/dev/stdout"
ln -s /proc/self/fd/2 "$t/dev/stderr"
exec chroot "$t" "$@"
"#;

/// `program` (a path inside the tree, or a name looked up in the
/// command's PATH inside it) run in `tree`, isolated as the module header
/// says; add arguments and environment to the returned command as usual.
pub fn isolated(tree: &Path, program: &str) -> Cmd {
    Cmd::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            SETUP,
            "craton-chroot",
        ])
        .arg(tree)
        .arg(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/self belongs to the process's effective user.
    fn running_as_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    use crate::files::mounts_below;
    use std::fs;
    use std::path::PathBuf;

    /// A tree with the host's dash as /bin/sh and the libraries it links.
    fn dash_tree(dir: &Path) -> PathBuf {
        let tree = dir.join("tree");
        fs::create_dir_all(tree.join("bin")).unwrap();
        fs::copy("/usr/bin/dash", tree.join("bin/sh")).unwrap();
        let ldd = Cmd::new("ldd").arg("/usr/bin/dash").output().unwrap();
        for lib in String::from_utf8(ldd)
            .unwrap()
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let dest = tree.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(lib, dest).unwrap();
        }
        tree
    }

    /// Issue #11: maintainer scripts ran in a chroot whose /proc was the
    /// host's PID namespace (so /proc/1/root was the host's root), with
    /// the host's /dev bound read-write, and its mounts lived in the
    /// host's mount namespace. Now a program in the tree sees neither.
    #[test]
    fn a_program_in_the_tree_cannot_reach_the_host() {
        // Needs root (namespaces, mount(2)); CI and the development
        // machines run as root.
        if !running_as_root() {
            eprintln!("skipped: not root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tree = dash_tree(dir.path());
        let marker = dir.path().join("host-marker");
        fs::write(&marker, "host").unwrap();
        let script = format!(
            r#"n=0; for p in /proc/[0-9]*; do n=$((n + 1)); done
echo "pid=$$ procs=$n"
if [ -e /proc/1/root{marker} ]; then echo "host-root-visible"; fi
set -- /dev/*; echo "dev=$*"
[ -c /dev/null ] && echo "null-ok"
echo x >/dev/null && echo "null-writable"
"#,
            marker = marker.display()
        );
        let out = isolated(&tree, "/bin/sh")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["-c", &script])
            .output()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        // The program is PID 1 of its namespace, alone with its shell's
        // command substitutions.
        assert!(out.contains("pid=1 procs=1\n"), "{out}");
        assert!(!out.contains("host-root-visible"), "{out}");
        assert!(
            out.contains(
                "dev=/dev/fd /dev/full /dev/null /dev/ptmx /dev/pts /dev/random /dev/shm \
                 /dev/stderr /dev/stdin /dev/stdout /dev/tty /dev/urandom /dev/zero\n"
            ),
            "{out}"
        );
        assert!(out.contains("null-ok\nnull-writable\n"), "{out}");
        // Nothing was ever mounted in the host's namespace.
        assert_eq!(mounts_below(&tree).unwrap(), Vec::<PathBuf>::new());
        assert!(fs::read_dir(tree.join("dev")).unwrap().next().is_none());
    }

    /// A mount point that is a symlink is refused, not followed.
    #[test]
    fn a_symlinked_mount_point_is_refused() {
        if !running_as_root() {
            eprintln!("skipped: not root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tree = dash_tree(dir.path());
        std::os::unix::fs::symlink("/", tree.join("proc")).unwrap();
        let err = isolated(&tree, "/bin/sh")
            .args(["-c", "true"])
            .run()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("proc is not a folder"),
            "{err:#}"
        );
    }
}
