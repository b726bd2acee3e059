//! Unit tests of the SBOM, one file per part, and what they share:
//! copyright files shaped as real Debian ones (bash, libsystemd0 and
//! libssl3t64 of trixie, shortened; gcc-14-base's free text) and small
//! locks.
//!
//! - `copyright_tests`: the copyright file and the license mapping.
//! - `document_tests`: the document's shape, relationships, identifiers
//!   and determinism.
//! - `debs_tests`: reading .debs built here with dpkg-deb, and trees.
//!
//! The check against the real archive is real_tests.rs.

#[path = "copyright_tests.rs"]
mod copyright_tests;
#[path = "debs_tests.rs"]
mod debs_tests;
#[path = "document_tests.rs"]
mod document_tests;

use std::collections::BTreeMap;

use serde_json::Value;

use super::debs::{DebFacts, Facts};
use super::document::{Image, document};
use crate::digest::Sha256;
use crate::lock::{Inputs, Lock, LockedArtifact, LockedPackage};

pub(super) const FORMAT: &str =
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/";

/// bash's copyright file, its structure kept and its texts cut.
pub(super) fn bash_copyright() -> String {
    format!(
        "{FORMAT}
Upstream-Contact: chet@po.cwru.edu
Comment:
 This is Debian GNU/Linux's prepackaged version of the FSF's GNU Bash.
 .
 This package was put together by Matthias Klose <doko@debian.org>.
Source:
 ftp.gnu.org:/pub/gnu/bash

Files: *
Copyright: (C) 1987-2022 Free Software Foundation, Inc.
License: GPL-3+

Files:
 tests/ifs-posix.tests
 tests/posix2.tests
Copyright: (C) 2005 Glen Fowler
License: GPL-3+

License: GPL-3+
 Bash is free software; you can redistribute it and/or modify it under
 the terms of the GNU General Public License as published by the Free
 Software Foundation; either version 3, or (at your option) any later
 version.
Comment:
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in `/usr/share/common-licenses/GPL-3'.

Files: y.tab.*
Copyright: (C) 1984, 1989-1990, 2000-2015, 2018-2021 Free Software Foundation,
   Inc.
License: GPL-3+ with Bison exception
   This program is free software: you can redistribute it and/or modify
 .
   As a special exception, you may create a larger work that contains
   part or all of the Bison parser skeleton.

Files: doc/bashref.texi
Copyright: (C) 1988-2022 Free Software Foundation, Inc.
License: GFDL-NIV-1.3

Files: lib/sh/inet_aton.c
Copyright:
 * Copyright (c) 1983, 1990, 1993
License: BSD-4-clause-UC and MIT-like

License: BSD-4-clause-UC
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the following conditions
 * are met:

License: MIT-like
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted.

Files: support/man2html.c
Copyright: Richard Verhoeven
License: permissive
 * Permission is granted to distribute, modify and use this program as long
 * as this comment is not removed or changed.
"
    )
}

/// libsystemd0's (systemd's source) copyright file, shortened.
pub(super) fn systemd_copyright() -> String {
    format!(
        "{FORMAT}
Upstream-Name: systemd
Source: https://github.com/systemd/systemd

Files: *
Copyright: 2008-2015 Kay Sievers <kay@vrfy.org>
License: LGPL-2.1+

Files: src/basic/siphash24.h
Copyright: 2012 Jean-Philippe Aumasson
License: CC0-1.0

Files: src/basic/linux/*
Copyright: 1995-2004 Jeffrey T. Hackett
License: GPL-2 with Linux-syscall-note exception

Files: src/basic/sparse-endian.h
Copyright: 2012 Josh Triplett <josh@joshtriplett.org>
License: Expat

Files: src/basic/MurmurHash2.c
       src/basic/MurmurHash2.h
Copyright: none
License: public-domain
 You can use this free for any purpose. It's in the public domain. It has no
 warranty.

Files: debian/*
Copyright: 2010-2013 Tollef Fog Heen <tfheen@debian.org>
License: LGPL-2.1+

License: LGPL-2.1+
 This library is free software; you can redistribute it and/or
 modify it under the terms of the GNU Lesser General Public
 License as published by the Free Software Foundation.

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a
 copy of this software.
"
    )
}

/// libssl3t64's (openssl's) copyright file, shortened.
pub(super) fn openssl_copyright() -> String {
    format!(
        "{FORMAT}
Source: https://www.openssl.org/source/

Files: *
Copyright: 1998-2023 The OpenSSL Project
License: Apache-2.0

Files: debian/*
Copyright: 2017 Sebastian Andrzej Siewior <sebastian@breakpoint.cc>
License: Apache-2.0

Files: external/perl/Text-Template-1.56/*
Copyright: 2013-2014 Michael Schout <mschout@cpan.org>
License: Artistic or GPL-1+

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the \"License\");

License: Artistic
 This program is free software; you can redistribute it and/or modify
 it under the terms of the Artistic License.

License: GPL-1+
 This program is free software; you can redistribute it and/or modify
 it under the terms of the GNU General Public License.
"
    )
}

/// gcc-14-base's copyright file: free text, not machine-readable.
pub(super) const GCC_COPYRIGHT: &str = "\
This is the Debian GNU/Linux prepackaged version of the GNU compiler
collection, containing Ada, C, C++, D, Fortran 95, Go, Objective-C,
Objective-C++, and Modula-2 compilers, documentation, and support
libraries.

Language       Compiler package  Library package    Documentation
---------------------------------------------------------------------------
Ada            gnat-14          libgnat-14          gnat-14-doc
";

pub(super) fn image(epoch: u64) -> Image<'static> {
    Image {
        name: "ch",
        version: "2026.1",
        epoch,
    }
}

pub(super) fn inputs() -> Inputs {
    Inputs {
        include: vec![],
        exclude: vec![],
        tools: vec![],
        initrd: vec![],
        repositories: BTreeMap::new(),
        path_exclude: vec![],
        path_include: vec![],
    }
}

pub(super) use crate::lock::test_package as pkg;

/// A lock of `name` or `name=version` entries per set.
pub(super) fn lock_of(image: &[&str], initrd: &[&str], tools: &[&str]) -> Lock {
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| match n.split_once('=') {
                Some((n, v)) => pkg(n, v),
                None => pkg(n, "1.0-1"),
            })
            .collect()
    };
    Lock::new(
        inputs(),
        set(image),
        vec![LockedArtifact {
            name: "rkt".into(),
            url: "https://example.org/rkt/rkt-v1.30.0.tar.gz".into(),
            sha256: Sha256::of(b"rkt"),
        }],
        set(tools),
        set(initrd),
    )
}

pub(super) fn sample_lock() -> Lock {
    Lock::new(
        inputs(),
        vec![
            pkg("bash", "5.2.37-2"),
            pkg("systemd", "257.9-1~deb13u1"),
            pkg("libsystemd0", "257.9-1~deb13u1"),
        ],
        vec![
            LockedArtifact {
                name: "rkt".into(),
                url: "https://example.org/rkt/rkt-v1.30.0.tar.gz".into(),
                sha256: Sha256::of(b"rkt"),
            },
            LockedArtifact {
                name: "flannel".into(),
                url: "file:///home/someone/standins/flanneld-amd64".into(),
                sha256: Sha256::of(b"flannel"),
            },
        ],
        vec![pkg("e2fsprogs", "1.47.2-3")],
        vec![pkg("systemd", "257.9-1~deb13u1"), pkg("dash", "0.5.12-12")],
    )
}

pub(super) fn sample_facts(lock: &Lock) -> Facts {
    let mut facts = Facts::new();
    let sha = |n: &str| {
        lock.packages
            .iter()
            .chain(&lock.initrd)
            .find(|p| p.name == n)
            .unwrap()
            .sha256
    };
    facts.insert(
        sha("bash"),
        DebFacts {
            maintainer: Some("Matthias Klose and the Bash Maintainers <doko@debian.org>".into()),
            source: None,
            homepage: Some("https://www.gnu.org/software/bash/".into()),
            summary: Some("GNU Bourne Again SHell".into()),
            copyright: Some(bash_copyright()),
        },
    );
    facts.insert(
        sha("systemd"),
        DebFacts {
            maintainer: Some(
                "Debian systemd Maintainers <pkg-systemd-maintainers@lists.alioth.debian.org>"
                    .into(),
            ),
            copyright: Some(systemd_copyright()),
            ..DebFacts::default()
        },
    );
    facts.insert(
        sha("libsystemd0"),
        DebFacts {
            source: Some("systemd".into()),
            copyright: Some(systemd_copyright()),
            ..DebFacts::default()
        },
    );
    facts.insert(
        sha("dash"),
        DebFacts {
            homepage: Some("http://gondor.apana.org.au/~herbert/dash/ (old)".into()),
            copyright: Some(openssl_copyright()),
            ..DebFacts::default()
        },
    );
    facts
}

/// A document of one image package with these facts.
pub(super) fn one_package_doc(name: &str, facts: &DebFacts) -> Value {
    let mut lock = lock_of(&[name], &[], &[]);
    lock.artifacts.clear();
    let facts: Facts = [(lock.packages[0].sha256, facts.clone())].into();
    to_json(&document(&image(0), &lock, &facts))
}

pub(super) fn to_json(doc: &super::Document) -> Value {
    serde_json::from_slice(&doc.to_bytes().unwrap()).unwrap()
}

pub(super) fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

/// licenseId -> extractedText.
pub(super) fn extracted(doc: &Value) -> BTreeMap<String, String> {
    doc["hasExtractedLicensingInfos"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e["licenseId"].as_str().unwrap().to_owned(),
                        e["extractedText"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
