//! The syntax of the names and words a profile contains. Each rule returns
//! the reason a value is wrong, written to follow "`value` " in a message.
//!
//! These are syntax checks only: whether a package exists is the resolver's
//! question, whether a URL answers is the fetcher's.

type Rule = Result<(), String>;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Image names go into file names and os-release's IMAGE_ID, whose syntax
/// (os-release(5)) this narrows: a-z, 0-9 and `-`.
pub(super) fn image_name(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum) && s.chars().all(|c| is_lower_alnum(c) || c == '-');
    ok.then_some(()).ok_or_else(|| {
        "is not a valid name: use a-z, 0-9 and -, starting with a letter or digit".to_string()
    })
}

/// Repository and artifact names: the same syntax as image names, as they
/// appear in the lock and in cache paths.
pub(super) fn entry_name(s: &str) -> Rule {
    image_name(s)
}

/// IMAGE_VERSION in os-release(5): "0-9, a-z, `.`, `_` and `-`".
pub(super) fn image_version(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum)
        && s.chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or_else(|| {
        "is not a valid version: use a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit \
         (os-release IMAGE_VERSION)"
            .to_string()
    })
}

/// os-release(5): "variable names must be in upper-case and will only use
/// A-Z, 0-9 and _"; a name cannot start with a digit, as in shell.
pub(super) fn os_release_key(s: &str) -> Rule {
    let ok = s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(()).ok_or_else(|| {
        "is not an os-release key: use A-Z, 0-9 and _, starting with A-Z".to_string()
    })
}

/// os-release is a file of one assignment per line: no line breaks or other
/// control characters in a value.
pub(super) fn os_release_value(s: &str) -> Rule {
    if s.chars().any(char::is_control) {
        return Err("contains a control character (such as a line break)".to_string());
    }
    Ok(())
}

/// Debian Policy 5.6.1 (Source, which 5.6.7 Package refers to): lower case
/// letters, digits, `+`, `-` and `.`, at least two characters, starting
/// with an alphanumeric character.
pub(super) fn package(s: &str) -> Rule {
    let ok = s.len() >= 2
        && s.starts_with(is_lower_alnum)
        && s.chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '+' | '-' | '.'));
    ok.then_some(()).ok_or_else(|| {
        "is not a Debian package name (Debian Policy 5.6.1: a-z, 0-9, +, - and ., \
         at least two characters, starting with a letter or digit)"
            .to_string()
    })
}

/// Suites and components become path segments of archive URLs
/// (dists/SUITE/COMPONENT/), so no `/`, spaces or dots-only names.
pub(super) fn archive_word(s: &str) -> Rule {
    let ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or_else(|| {
        "is not a suite or component name: use letters, digits, `.`, `_` and `-`".to_string()
    })
}

/// Kernel module names as modprobe takes them (it treats `-` and `_` alike).
pub(super) fn module(s: &str) -> Rule {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    ok.then_some(())
        .ok_or_else(|| "is not a kernel module name: use letters, digits, _ and -".to_string())
}

/// One kernel command-line argument (or a console setting): the stages join
/// them with spaces, so one containing a space would become two.
pub(super) fn kernel_arg(s: &str) -> Rule {
    if s.is_empty() {
        return Err("is empty".to_string());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace: list each argument separately".to_string());
    }
    Ok(())
}

/// A mirror: http(s) with a host, or file:// with an absolute path.
pub(super) fn mirror_url(s: &str) -> Rule {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace".to_string());
    }
    let host_ok = |rest: &str| !rest.is_empty() && !rest.starts_with('/');
    let ok = if let Some(rest) = s.strip_prefix("http://") {
        host_ok(rest)
    } else if let Some(rest) = s.strip_prefix("https://") {
        host_ok(rest)
    } else if let Some(rest) = s.strip_prefix("file://") {
        rest.starts_with('/')
    } else {
        false
    };
    ok.then_some(()).ok_or_else(|| {
        "is not a mirror URL: expected http://HOST/..., https://HOST/... or file:///PATH"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_policy() {
        for good in [
            "systemd",
            "docker.io",
            "libstdc++6",
            "g++",
            "xz-utils",
            "0ad",
        ] {
            assert_eq!(package(good), Ok(()), "{good}");
        }
        for bad in [
            "a",
            "Systemd",
            "-foo",
            "foo_bar",
            "foo:amd64",
            "foo bar",
            "",
        ] {
            assert!(package(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors_need_a_host_or_an_absolute_path() {
        assert!(mirror_url("http://mirror.example/debian").is_ok());
        assert!(mirror_url("https://mirror.example").is_ok());
        assert!(mirror_url("file:///srv/mirror").is_ok());
        for bad in [
            "ftp://mirror.example",
            "http://",
            "http:///x",
            "file://srv",
            "mirror",
        ] {
            assert!(mirror_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_versions() {
        assert!(image_name("container-host").is_ok());
        assert!(image_name("-x").is_err());
        assert!(image_name("Host").is_err());
        assert!(image_version("0.1.0").is_ok());
        assert!(image_version("2026.11.27-rc_1").is_ok());
        assert!(image_version("1.0+git").is_err());
        assert!(os_release_key("PRETTY_NAME").is_ok());
        assert!(os_release_key("pretty_name").is_err());
        assert!(os_release_key("1X").is_err());
        assert!(kernel_arg("console=ttyS0,115200n8").is_ok());
        assert!(kernel_arg("a b").is_err());
    }
}
