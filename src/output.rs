//! Standard output that reports a failed write instead of panicking.
//!
//! `println!` panics when stdout cannot be written (`mlcycle run > log` on
//! a full disk). Commands print through [`out!`] and [`outln!`] instead: the
//! first error is kept, later output is dropped, and `main` reports it and
//! exits with code 74 (`EX_IOERR`). A closed pipe still ends the process
//! quietly, through SIGPIPE.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

static FAILED: OnceLock<io::Error> = OnceLock::new();

/// Writes to stdout; the first error is kept for [`failure`].
pub(crate) fn write_out(args: fmt::Arguments<'_>) {
    if FAILED.get().is_some() {
        return;
    }
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        let _ = FAILED.set(e);
    }
}

/// Flushes stdout and returns the first write error, if any.
pub(crate) fn failure() -> Option<&'static io::Error> {
    if FAILED.get().is_none() {
        if let Err(e) = io::stdout().lock().flush() {
            let _ = FAILED.set(e);
        }
    }
    FAILED.get()
}

/// `print!` that never panics (see the module).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!($($t)*))
    };
}

/// `println!` that never panics (see the module).
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}

pub(crate) use {out, outln};
