//! A process-wide "stop when it is safe" flag. Ctrl-C sets it; long operations check it
//! at safe points (between slot batches, between script statements) and stop there.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running work to stop at its next safe point.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Clears the flag (the REPL does this before each input line).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
