//! The tools tree: resolved from the real trixie repositories as its own
//! closure, locked, fetched, unpacked into the cache and run from there
//! through the process wrapper, with trixie's libraries, whatever the host
//! has. Uses the default cache (~/.cache/craton or CRATON_CACHE).

use std::path::Path;

use craton::context::{Context, Options};
use craton::tools::ToolsTree;

#[test]
fn tools_run_from_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let lock_path = work.path().join("tools.lock");
    let ctx = Context::new(&Options {
        lock: Some(lock_path),
        ..Options::for_profile(root.join("tests/container-host-test.toml"))
    })
    .unwrap();
    let lock = craton::resolve::run(&ctx).unwrap();
    let names: Vec<&str> = lock.tools.iter().map(|p| p.name.as_str()).collect();
    for want in craton::profile::DEFAULT_TOOLS_PACKAGES {
        assert!(
            names.contains(want),
            "{want} is not in the tools set: {names:?}"
        );
    }
    craton::fetch::run(&ctx, &lock).unwrap();
    let tools = ToolsTree::for_lock(&ctx.cache, &lock);
    tools.ensure(&ctx.cache, &lock, 2).unwrap();
    assert!(
        tools.root().starts_with(ctx.cache.root()),
        "not in the cache"
    );

    // Each program prints its version, which is trixie's, not the host's.
    let version_of = |pkg: &str| {
        lock.tools
            .iter()
            .find(|p| p.name == pkg)
            .map(|p| p.version.clone())
            .unwrap()
    };
    let e2fs = version_of("e2fsprogs");
    let upstream = e2fs.split('-').next().unwrap();
    let out = tools.cmd("mke2fs").unwrap().arg("-V").output_all().unwrap();
    assert!(out.contains(upstream), "mke2fs -V: {out} (want {e2fs})");
    for (prog, arg, want) in [
        ("mkfs.erofs", "--version", "mkfs.erofs"),
        ("qemu-img", "--version", "qemu-img version"),
        ("veritysetup", "--version", "veritysetup"),
        ("grub-mkimage", "--version", "grub-mkimage"),
        ("mkfs.fat", "--help", "mkfs.fat"),
        ("mcopy", "--version", "mtools"),
    ] {
        let out = tools.cmd(prog).unwrap().arg(arg).output_all().unwrap();
        assert!(out.contains(want), "{prog} {arg}: {out}");
    }
    // The signed shim and GRUB are data in the tree, for the disk stage.
    assert!(tools.path("usr/lib/shim/shimx64.efi.signed").is_file());
    assert!(
        tools
            .path("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")
            .is_file()
    );
    assert!(tools.path("usr/lib/grub/i386-pc/boot.img").is_file());
    // A second call finds the tree in the cache.
    let again = ToolsTree::for_lock(&ctx.cache, &lock);
    assert!(again.ensure(&ctx.cache, &lock, 2).unwrap().reused);
    assert_eq!(again.root(), tools.root());
}
