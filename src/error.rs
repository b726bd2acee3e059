//! Error classification for exit codes.
//!
//! Everything is `anyhow::Error`; the one thing a caller branches on is whether
//! the failure was caused by bad input (a profile mistake, a lock that
//! disagrees with its profile, a missing file named on the command line). Such
//! errors carry [`BadInput`] somewhere in their chain and exit with code 2.

use std::fmt;

/// Exit code for a failed build (network, tool failure, digest mismatch).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad input: the user has to change something.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Marker error for bad input. The message is the whole user-facing text
/// (file, key, line:column where known).
#[derive(Debug, thiserror::Error)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds an `anyhow::Error` that exits with code 2.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// True when any error in the chain is [`BadInput`].
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<BadInput>().is_some())
}

/// The exit code for an error.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if is_bad_input(err) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_survives_context() {
        let e: anyhow::Result<()> = Err(bad_input("profile.toml:1:1: unknown key `x`"));
        let e = e.context("loading profile").unwrap_err();
        assert_eq!(exit_code(&e), EXIT_BAD_INPUT);
        assert_eq!(exit_code(&anyhow::anyhow!("network down")), EXIT_FAILURE);
    }
}
