//! SIGINT and SIGTERM become a flag instead of killing craton at once, so
//! that guards (mounts, temporary trees) unwind on the way out. Long steps
//! and the process wrapper poll [`check`], which turns the flag into an
//! error; `main` then exits after every guard has dropped.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Installs the handlers (idempotent). A second signal while the first is
/// being handled terminates at once (signal-hook's conditional shutdown), so
/// a stuck cleanup can still be stopped.
pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(flag()))?;
        signal_hook::flag::register(sig, Arc::clone(flag()))?;
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    flag().load(Ordering::SeqCst)
}

/// Fails with "interrupted" once a signal arrived.
pub fn check() -> Result<()> {
    if interrupted() {
        bail!("interrupted by a signal");
    }
    Ok(())
}
