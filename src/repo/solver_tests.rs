//! Resolver tests on small hand-written Packages texts.

use super::*;
use crate::error::is_bad_input;
use crate::repo::packages::parse_packages;

const SHA: &str = "ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4";

/// Records of one suite from short stanzas; fields the resolver does not
/// read (Architecture, Filename, Size, SHA256) are filled in.
fn suite(name: &str, text: &str) -> Vec<PackageRecord> {
    let full: Vec<String> = text
        .trim()
        .split("\n\n")
        .map(|st| {
            let mut st = st.trim().to_owned();
            if !st.contains("Architecture:") {
                st.push_str("\nArchitecture: amd64");
            }
            format!("{st}\nFilename: pool/f.deb\nSize: 1\nSHA256: {SHA}\n")
        })
        .collect();
    parse_packages(&full.join("\n"), &Arc::from("debian"), &Arc::from(name)).unwrap()
}

fn universe(text: &str) -> Universe {
    Universe::new(suite("trixie", text))
}

/// Resolves and checks the result is consistent; returns "name version".
fn ok(u: &Universe, include: &[&str], exclude: &[&str]) -> Vec<String> {
    let req = Request {
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        with_required: true,
    };
    let set = solve(u, &req).unwrap();
    assert_eq!(check_closure(&set), Vec::<String>::new());
    set.iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect()
}

fn err(u: &Universe, include: &[&str], exclude: &[&str]) -> String {
    let req = Request {
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        with_required: true,
    };
    let e = solve(u, &req).unwrap_err();
    assert!(is_bad_input(&e), "resolver errors exit 2: {e:#}");
    e.to_string()
}

#[test]
fn alternatives_take_the_first_installable() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b | c\n\n\
         Package: b\nVersion: 1\n\n\
         Package: c\nVersion: 1\n\n\
         Package: x\nVersion: 1\nConflicts: b",
    );
    assert_eq!(ok(&u, &["a"], &[]), ["a 1", "b 1"]);
    assert_eq!(ok(&u, &["a"], &["b"]), ["a 1", "c 1"]);
    // x is selected first (requested), so b would conflict: c is taken.
    assert_eq!(ok(&u, &["x", "a"], &[]), ["a 1", "c 1", "x 1"]);
}

#[test]
fn satisfied_alternative_pulls_nothing_more() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b | c\n\n\
         Package: b\nVersion: 1\n\n\
         Package: c\nVersion: 1",
    );
    assert_eq!(ok(&u, &["a", "c"], &[]), ["a 1", "c 1"]);
}

#[test]
fn virtual_packages() {
    let u = universe(
        "Package: mutt\nVersion: 1\nDepends: mail-transport-agent\n\n\
         Package: postfix\nVersion: 3\nPriority: optional\n\
         Provides: mail-transport-agent\nConflicts: mail-transport-agent\n\n\
         Package: exim4\nVersion: 4\nPriority: standard\n\
         Provides: mail-transport-agent\nConflicts: mail-transport-agent\n\n\
         Package: aaa-mta\nVersion: 1\nPriority: optional\nProvides: mail-transport-agent\n\n\
         Package: only\nVersion: 1\nDepends: awk\n\n\
         Package: mawk\nVersion: 1.3\nProvides: awk",
    );
    // Several providers: the most important Priority wins.
    assert_eq!(ok(&u, &["mutt"], &[]), ["exim4 4", "mutt 1"]);
    // A requested provider is preferred; its own Conflicts/Provides of the
    // virtual name do not make it conflict with itself.
    assert_eq!(ok(&u, &["postfix", "mutt"], &[]), ["mutt 1", "postfix 3"]);
    // Among equal priorities the first name wins.
    assert_eq!(ok(&u, &["mutt"], &["exim4"]), ["aaa-mta 1", "mutt 1"]);
    // One provider.
    assert_eq!(ok(&u, &["only"], &[]), ["mawk 1.3", "only 1"]);
    // Mutually exclusive providers cannot both be installed.
    let e = err(&u, &["postfix", "exim4"], &[]);
    assert!(e.contains("conflicts with `mail-transport-agent`"), "{e}");
    // A virtual name can be requested when one package provides it.
    assert_eq!(ok(&u, &["awk"], &[]), ["mawk 1.3"]);
    let e = err(&u, &["awk"], &["mawk"]);
    assert_eq!(
        e,
        "package `awk` stands for mawk, which the profile excludes"
    );
    let e = err(&u, &["mail-transport-agent"], &[]);
    assert!(
        e.contains("is virtual") && e.contains("exim4, postfix"),
        "{e}"
    );
}

#[test]
fn versioned_provides() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: foo (>= 2)\n\n\
         Package: p1\nVersion: 9\nProvides: foo\n\n\
         Package: p2\nVersion: 1\nProvides: foo (= 2.1)\n\n\
         Package: b\nVersion: 1\nDepends: bar (>= 1)\n\n\
         Package: p3\nVersion: 5\nProvides: bar",
    );
    assert_eq!(ok(&u, &["a"], &[]), ["a 1", "p2 1"]);
    let e = err(&u, &["b"], &[]);
    assert!(
        e.contains("cannot satisfy `bar (>= 1)` needed by b 1"),
        "{e}"
    );
    assert!(e.contains("no provider of `bar` fits"), "{e}");
}

#[test]
fn unsatisfiable_dependency_names_the_chain() {
    let u = universe(
        "Package: docker.io\nVersion: 26.1\nDepends: bar\n\n\
         Package: bar\nVersion: 1.0\nDepends: libfoo (>= 2)\n\n\
         Package: libfoo\nVersion: 1.5",
    );
    assert_eq!(
        err(&u, &["docker.io"], &[]),
        "cannot satisfy `libfoo (>= 2)` needed by bar 1.0 <- docker.io 26.1 <- \
         requested in the profile: the candidate libfoo is 1.5 (trixie)"
    );
}

#[test]
fn unknown_and_contradictory_requests() {
    let u = Universe::new(
        [
            suite("trixie", "Package: a\nVersion: 1"),
            suite("trixie-security", "Package: b\nVersion: 1"),
        ]
        .concat(),
    );
    assert_eq!(
        err(&u, &["nosuch"], &[]),
        "package `nosuch` is not in any repository (suites: debian/trixie, debian/trixie-security)"
    );
    assert!(err(&u, &["a"], &["a"]).contains("both included and excluded"));
}

#[test]
fn version_constraints_breaks_and_conflicts() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b (>= 2), c (<< 3)\n\n\
         Package: b\nVersion: 2.0-1\n\n\
         Package: c\nVersion: 2.9\n\n\
         Package: old\nVersion: 1\nBreaks: b (<< 2)\n\n\
         Package: new\nVersion: 1\nBreaks: b (<< 3)\n\n\
         Package: hater\nVersion: 1\nConflicts: c",
    );
    assert_eq!(
        ok(&u, &["a", "old"], &[]),
        ["a 1", "b 2.0-1", "c 2.9", "old 1"]
    );
    let e = err(&u, &["new", "a"], &[]);
    assert!(e.contains("cannot satisfy `b (>= 2)` needed by a 1"), "{e}");
    assert!(
        e.contains("new 1 conflicts with `b (<< 3)` (b 2.0-1)"),
        "{e}"
    );
    // A conflict with an already selected package blocks a dependency...
    assert_eq!(
        err(&u, &["a", "hater"], &[]),
        "cannot satisfy `c (<< 3)` needed by a 1 <- requested in the profile: \
         hater 1 conflicts with `c` (c 2.9)"
    );
    // ...and two requested packages that conflict are refused outright.
    assert_eq!(
        err(&u, &["c", "hater"], &[]),
        "cannot install hater 1 (requested in the profile): hater 1 conflicts with `c` (c 2.9)"
    );
}

#[test]
fn pre_depends_and_required_are_followed() {
    let u = universe(
        "Package: base-files\nVersion: 13\nPriority: required\nEssential: yes\nDepends: libc6\n\n\
         Package: libc6\nVersion: 2.41\nPriority: optional\n\n\
         Package: app\nVersion: 1\nPre-Depends: init-system-helpers\n\n\
         Package: init-system-helpers\nVersion: 1.68\n\n\
         Package: unrelated\nVersion: 1\nRecommends: app",
    );
    assert_eq!(
        ok(&u, &["app"], &[]),
        [
            "app 1",
            "base-files 13",
            "init-system-helpers 1.68",
            "libc6 2.41"
        ]
    );
    // An excluded required package is left out.
    assert_eq!(ok(&u, &["unrelated"], &["base-files"]), ["unrelated 1"]);
}

#[test]
fn arch_qualifiers() {
    let u = universe(
        "Package: tool\nVersion: 1\nDepends: perl:any, libc6:amd64\n\n\
         Package: perl\nVersion: 5.40\nMulti-Arch: allowed\n\n\
         Package: libc6\nVersion: 2.41\nMulti-Arch: same\n\n\
         Package: bad\nVersion: 1\nDepends: libc6:any\n\n\
         Package: foreign\nVersion: 1\nDepends: libc6:i386",
    );
    assert_eq!(
        ok(&u, &["tool"], &[]),
        ["libc6 2.41", "perl 5.40", "tool 1"]
    );
    let e = err(&u, &["bad"], &[]);
    assert!(e.contains("libc6 is not Multi-Arch: allowed"), "{e}");
    let e = err(&u, &["foreign"], &[]);
    assert!(e.contains("names architecture i386"), "{e}");
}

#[test]
fn highest_version_across_suites_wins() {
    let trixie = suite(
        "trixie",
        "Package: openssl\nVersion: 3.5.1-1\n\nPackage: tzdata\nVersion: 2025b-4\n\n\
         Package: same\nVersion: 1.0",
    );
    let security = suite(
        "trixie-security",
        "Package: openssl\nVersion: 3.5.1-1+deb13u1\n\nPackage: tzdata\nVersion: 2025a-1\n\n\
         Package: same\nVersion: 1.0-0",
    );
    let u = Universe::new([trixie, security].concat());
    let set = solve(
        &u,
        &Request {
            include: vec!["openssl".into(), "tzdata".into(), "same".into()],
            exclude: vec![],
            with_required: true,
        },
    )
    .unwrap();
    let got: Vec<String> = set
        .iter()
        .map(|p| format!("{} {}", p.describe(), p.version))
        .collect();
    assert_eq!(
        got,
        [
            "openssl 3.5.1-1+deb13u1 (trixie-security) 3.5.1-1+deb13u1",
            // Equal versions: the first loaded suite wins.
            "same 1.0 (trixie) 1.0",
            "tzdata 2025b-4 (trixie) 2025b-4",
        ]
    );
}

#[test]
fn check_closure_finds_problems() {
    let recs = suite(
        "trixie",
        "Package: a\nVersion: 1\nDepends: b (>= 2) | c\n\n\
         Package: b\nVersion: 1\nConflicts: d\n\n\
         Package: d\nVersion: 1",
    );
    let set: Vec<_> = recs.into_iter().map(Arc::new).collect();
    assert_eq!(
        check_closure(&set),
        [
            "a 1: unsatisfied `b (>= 2) | c`",
            "b 1 conflicts with `d` (d 1)"
        ]
    );
}

/// Resolves a container-host package set from a real Packages index when
/// CRATON_REAL_PACKAGES names one (uncompressed); prints size and timings.
/// CRATON_REAL_EXCLUDE (space-separated) is the exclude list. On trixie
/// this gave the same 150 packages and versions as
/// `apt-get -s install --no-install-recommends` (same list plus the
/// Priority: required packages, empty dpkg status).
#[test]
fn real_container_host_set() {
    let Some(path) = std::env::var_os("CRATON_REAL_PACKAGES") else {
        eprintln!("CRATON_REAL_PACKAGES not set; skipping");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let t = std::time::Instant::now();
    let recs = parse_packages(&text, &Arc::from("debian"), &Arc::from("trixie")).unwrap();
    let parsed = t.elapsed();
    let u = Universe::new(recs);
    let built = t.elapsed();
    let include = "systemd systemd-sysv udev dbus docker.io docker-cli containerd runc \
                   iptables linux-image-amd64 kmod iproute2 openssh-server systemd-resolved \
                   systemd-timesyncd ca-certificates";
    let exclude = std::env::var("CRATON_REAL_EXCLUDE").unwrap_or_default();
    let req = Request {
        include: include.split_whitespace().map(str::to_owned).collect(),
        exclude: exclude.split_whitespace().map(str::to_owned).collect(),
        with_required: true,
    };
    let set = match solve(&u, &req) {
        Ok(set) => set,
        Err(e) => panic!("{e:#}"),
    };
    let done = t.elapsed();
    eprintln!(
        "parse {parsed:?}, universe {:?}, resolve {:?}: {} packages",
        built - parsed,
        done - built,
        set.len()
    );
    for p in &set {
        eprintln!("  {} {}", p.name, p.version);
    }
    assert_eq!(check_closure(&set), Vec::<String>::new());
    assert!((150..400).contains(&set.len()), "{}", set.len());
}
