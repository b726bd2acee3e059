//! The machine-readable copyright file and Debian's license names as
//! SPDX expressions.

use super::super::dep5;
use super::super::license::{Refs, from_debian, sanitise};
use super::*;

fn map(synopsis: &str) -> String {
    let lic = dep5::Licensing::default();
    from_debian(synopsis, &lic).render(&Refs::default())
}
#[test]
fn bash_declares_its_main_license_and_concludes_all() {
    let lic = dep5::parse(&bash_copyright()).unwrap();
    assert_eq!(lic.main.as_deref(), Some("GPL-3+"));
    assert_eq!(
        lic.files,
        [
            "GPL-3+",
            "GPL-3+ with Bison exception",
            "GFDL-NIV-1.3",
            "BSD-4-clause-UC and MIT-like",
            "permissive"
        ]
    );
    // Stand-alone paragraphs give texts; a Files paragraph's own text too;
    // ` .` is an empty line, the one leading blank is gone.
    assert!(
        lic.text("GPL-3+")
            .unwrap()
            .starts_with("Bash is free software;")
    );
    assert_eq!(
        lic.text("GPL-3+ with Bison exception").unwrap(),
        "  This program is free software: you can redistribute it and/or modify\n\n  \
         As a special exception, you may create a larger work that contains\n  \
         part or all of the Bison parser skeleton."
    );
    assert!(lic.text("permissive").unwrap().contains("as this comment"));
    assert!(lic.text("mit-like").is_some(), "case-insensitive lookup");

    let facts = DebFacts {
        copyright: Some(bash_copyright()),
        ..DebFacts::default()
    };
    let doc = one_package_doc("bash", &facts);
    let p = package(&doc, "bash");
    assert_eq!(p["licenseDeclared"], "GPL-3.0-or-later");
    assert_eq!(
        p["licenseConcluded"],
        "GPL-3.0-or-later AND GPL-3.0-or-later WITH Bison-exception-2.2 AND \
         GFDL-1.3-no-invariants-only AND BSD-4-Clause-UC AND LicenseRef-MIT-like AND \
         LicenseRef-permissive"
    );
    assert!(p["licenseComments"].as_str().unwrap().contains("Files: *"));
    let extracted = extracted(&doc);
    assert_eq!(
        extracted.keys().collect::<Vec<_>>(),
        ["LicenseRef-MIT-like", "LicenseRef-permissive"]
    );
    assert!(extracted["LicenseRef-MIT-like"].starts_with("* Permission to use"));
}

#[test]
fn systemd_maps_exceptions_expat_and_public_domain() {
    let facts = DebFacts {
        copyright: Some(systemd_copyright()),
        ..DebFacts::default()
    };
    let doc = one_package_doc("libsystemd0", &facts);
    let p = package(&doc, "libsystemd0");
    assert_eq!(p["licenseDeclared"], "LGPL-2.1-or-later");
    assert_eq!(
        p["licenseConcluded"],
        "LGPL-2.1-or-later AND CC0-1.0 AND GPL-2.0-only WITH Linux-syscall-note AND MIT AND \
         LicenseRef-public-domain"
    );
    assert_eq!(
        extracted(&doc)["LicenseRef-public-domain"],
        "You can use this free for any purpose. It's in the public domain. It has no\nwarranty."
    );
}

#[test]
fn openssl_has_a_dual_licensed_part() {
    let facts = DebFacts {
        copyright: Some(openssl_copyright()),
        ..DebFacts::default()
    };
    let doc = one_package_doc("libssl3t64", &facts);
    let p = package(&doc, "libssl3t64");
    assert_eq!(p["licenseDeclared"], "Apache-2.0");
    assert_eq!(
        p["licenseConcluded"],
        "Apache-2.0 AND (Artistic-1.0-Perl OR GPL-1.0-or-later)"
    );
    assert!(doc.get("hasExtractedLicensingInfos").is_none());
}

#[test]
fn libc6_files_paragraphs_list_their_patterns_on_later_lines() {
    let text = format!(
        "{FORMAT}\nUpstream-Name: GNU C Library\nFiles-Excluded:\n manual/*\n\n\
         Files: *\nCopyright: 1991-2025 Free Software Foundation, Inc.\nLicense: LGPL-2.1+\n\n\
         Files:\n nptl/default-sched.h\n sysdeps/sparc/backtrace.c\n\
         Copyright: 1995-2025 Free Software Foundation, Inc.\nLicense: LGPL-2+\n\n\
         Files:\n *\n debian/*\nCopyright: none\nLicense: GPL-2\n"
    );
    let lic = dep5::parse(&text).unwrap();
    // The first paragraph whose patterns include `*` is the main one.
    assert_eq!(lic.main.as_deref(), Some("LGPL-2.1+"));
    assert_eq!(lic.files, ["LGPL-2.1+", "LGPL-2+", "GPL-2"]);
}

#[test]
fn not_machine_readable_is_noassertion() {
    assert_eq!(dep5::parse(GCC_COPYRIGHT), None);
    // A Files paragraph without the header's Format, an unknown format, a
    // line that is not deb822, and nothing at all.
    assert_eq!(dep5::parse("Files: *\nCopyright: x\nLicense: MIT\n"), None);
    assert_eq!(
        dep5::parse("Format: https://example.org/other\n\nFiles: *\nLicense: MIT\n"),
        None
    );
    let broken = format!("{FORMAT}\n\nFiles: *\nLicense: MIT\nno colon here\n");
    assert_eq!(dep5::parse(&broken), None);
    assert_eq!(dep5::parse(""), None);
    // DEP-5 with no license anywhere: parsed, nothing declared.
    let empty = dep5::parse(&format!("{FORMAT}\n")).unwrap();
    assert_eq!(empty.main, None);

    for (copyright, says) in [
        (
            Some(GCC_COPYRIGHT.to_owned()),
            "not in Debian's machine-readable",
        ),
        (None, "has no /usr/share/doc/gcc-14-base/copyright"),
        (Some(broken), "not in Debian's machine-readable"),
    ] {
        let facts = DebFacts {
            copyright,
            ..DebFacts::default()
        };
        let doc = one_package_doc("gcc-14-base", &facts);
        let p = package(&doc, "gcc-14-base");
        assert_eq!(p["licenseDeclared"], "NOASSERTION");
        assert_eq!(p["licenseConcluded"], "NOASSERTION");
        assert!(p["licenseComments"].as_str().unwrap().contains(says), "{p}");
    }
}

/// containerd's and qemu's copyright files have `#` comment lines.
#[test]
fn comment_lines_are_skipped() {
    let text = format!(
        "{FORMAT}\nSource: https://github.com/docker/containerd\n\
         # Excluded the whole vendor tree, except containerd/imgcrypt\n\
         Files-Excluded: vendor\n\n\
         Files: *\nCopyright: 2015 containerd authors\n\
         # not a field\nLicense: Apache-2.0\n"
    );
    let lic = dep5::parse(&text).unwrap();
    assert_eq!(lic.main.as_deref(), Some("Apache-2.0"));
    // Indented, `#` is text.
    let text = format!("{FORMAT}\n\nFiles: *\nCopyright: x\nLicense: foo\n # one\n");
    assert_eq!(dep5::parse(&text).unwrap().text("foo"), Some("# one"));
}

#[test]
fn header_license_stands_in_for_a_missing_files_star() {
    let text = format!("{FORMAT}\nLicense: ISC\n\nFiles: src/*\nCopyright: x\nLicense: Zlib\n");
    let lic = dep5::parse(&text).unwrap();
    assert_eq!(lic.main.as_deref(), Some("ISC"));
    assert_eq!(lic.files, ["Zlib"]);
}

#[test]
fn debian_names_map_to_spdx() {
    for (debian, spdx) in [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("GPL-3.0-only", "GPL-3.0-only"),
        ("GPL-3.0-or-later", "GPL-3.0-or-later"),
        ("GPL", "GPL-1.0-or-later"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("LGPL-2", "LGPL-2.0-only"),
        ("LGPL", "LGPL-2.0-or-later"),
        ("AGPL-3+", "AGPL-3.0-or-later"),
        ("GFDL-1.3+", "GFDL-1.3-or-later"),
        ("GFDL-NIV-1.3", "GFDL-1.3-no-invariants-only"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("bsd-3-clause", "BSD-3-Clause"),
        ("BSD-2-Clause", "BSD-2-Clause"),
        ("Expat", "MIT"),
        ("MIT", "MIT"),
        ("X11", "X11"),
        ("ISC", "ISC"),
        ("zlib", "Zlib"),
        ("ZLIB", "Zlib"),
        ("Apache-2", "Apache-2.0"),
        ("Apache-2.0", "Apache-2.0"),
        ("Artistic", "Artistic-1.0-Perl"),
        ("Artistic-2", "Artistic-2.0"),
        ("CC0", "CC0-1.0"),
        ("CC-BY-SA-4", "CC-BY-SA-4.0"),
        ("Unicode-DFS-2016", "Unicode-DFS-2016"),
        ("Ms-PL", "MS-PL"),
        ("0BSD", "0BSD"),
        ("Perl", "GPL-1.0-or-later OR Artistic-1.0-Perl"),
        (
            "GPL-2+ or Artistic",
            "GPL-2.0-or-later OR Artistic-1.0-Perl",
        ),
        ("LGPL-3+ or GPL-2+", "LGPL-3.0-or-later OR GPL-2.0-or-later"),
        (
            "GPL-1+ or Artistic, and Expat",
            "(GPL-1.0-or-later OR Artistic-1.0-Perl) AND MIT",
        ),
        (
            "GPL-2+ or AFL-2.1, and Expat and Tcl-BSDish",
            "(GPL-2.0-or-later OR AFL-2.1) AND MIT AND LicenseRef-Tcl-BSDish",
        ),
        // `and` binds tighter than `or` without a comma.
        (
            "MIT or BSD-2-clause and ISC",
            "MIT OR (BSD-2-Clause AND ISC)",
        ),
        ("GPL-2+ or GPL-2+", "GPL-2.0-or-later"),
        (
            "Expat or GPL-1+ or Artistic",
            "MIT OR GPL-1.0-or-later OR Artistic-1.0-Perl",
        ),
        (
            "GPL-3+ with Bison exception",
            "GPL-3.0-or-later WITH Bison-exception-2.2",
        ),
        (
            "GPL-3+ with autoconf exception",
            "GPL-3.0-or-later WITH Autoconf-exception-3.0",
        ),
        (
            "GPL-2+ with Texinfo exception",
            "GPL-2.0-or-later WITH Texinfo-exception",
        ),
        (
            "GPL-3+ with GCC-exception-3.1",
            "GPL-3.0-or-later WITH GCC-exception-3.1",
        ),
        (
            "GPL-3.0-or-later-WITH-Autoconf-exception-macro",
            "GPL-3.0-or-later WITH Autoconf-exception-macro",
        ),
        (
            "GPL-2 with Linux-syscall-note exception OR BSD-3-Clause",
            "GPL-2.0-only WITH Linux-syscall-note OR BSD-3-Clause",
        ),
        // SPDX lists no such exception: the whole term is a LicenseRef.
        (
            "GPL-2+ with OpenSSL exception",
            "LicenseRef-GPL-2plus-with-OpenSSL-exception",
        ),
        (
            "LGPL-2.1+-with-link-exception",
            "LicenseRef-LGPL-2.1plus-with-link-exception",
        ),
        ("public-domain", "LicenseRef-public-domain"),
        ("MIT/X11", "LicenseRef-MIT-X11"),
        ("GPL-2.5", "LicenseRef-GPL-2.5"),
        // Malformed synopses are one LicenseRef each.
        (
            "GPL-2+ with distribution exception, Expat and GPL-2+",
            "LicenseRef-GPL-2plus-with-distribution-exception-Expat-and-GPL-2plus",
        ),
        ("GPL-2+ or", "LicenseRef-GPL-2plus-or"),
        (", and MIT", "LicenseRef-and-MIT"),
    ] {
        assert_eq!(map(debian), spdx, "{debian}");
    }
}

#[test]
fn license_refs_are_valid_idstrings() {
    for (name, id) in [
        ("public-domain", "public-domain"),
        (
            "GPL-2+ with OpenSSL exception",
            "GPL-2plus-with-OpenSSL-exception",
        ),
        ("BSD_like (old)", "BSD-like-old"),
        ("--", "unnamed"),
        ("ünïcode", "n-code"),
    ] {
        assert_eq!(sanitise(name), id, "{name}");
    }
}

#[test]
fn one_name_with_several_texts_gets_one_ref_per_text() {
    let with =
        |text: &str| format!("{FORMAT}\n\nFiles: *\nCopyright: x\nLicense: custom\n {text}\n");
    let mut lock = lock_of(&["a", "b", "c", "d"], &[], &[]);
    lock.artifacts.clear();
    let text_of = |name: &str| match name {
        "a" | "c" => Some(with("Do what you like.")),
        "b" => Some(with("Only on Tuesdays.")),
        _ => Some(format!(
            "{FORMAT}\n\nFiles: *\nCopyright: x\nLicense: Custom\n"
        )),
    };
    let facts: Facts = lock
        .packages
        .iter()
        .map(|p| {
            let f = DebFacts {
                copyright: text_of(&p.name),
                ..DebFacts::default()
            };
            (p.sha256, f)
        })
        .collect();
    let doc = to_json(&document(&image(0), &lock, &facts));
    let declared = |n: &str| {
        package(&doc, n)["licenseDeclared"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(declared("a"), declared("c"));
    assert_ne!(declared("a"), declared("b"));
    assert_ne!(declared("a"), declared("d"));
    // The spelling of the smallest name (`Custom` < `custom`), a digest
    // of the text after it.
    assert!(
        declared("a").starts_with("LicenseRef-Custom-"),
        "{}",
        declared("a")
    );
    let extracted = extracted(&doc);
    assert_eq!(extracted.len(), 3);
    assert_eq!(extracted[&declared("a")], "Do what you like.");
    assert!(extracted[&declared("d")].contains("without giving its text"));
    assert!(extracted[&declared("d")].contains(" d."));
}
