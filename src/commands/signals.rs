//! How `cairn` meets SIGINT, SIGTERM, SIGHUP and SIGPIPE. `run` and `verify` stop gracefully
//! (finish what is running, record it, exit 128 + the signal); every other command exits at once.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::exec;

/// Which signal asked us to stop (0: none yet).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set by commands that stop gracefully (run, verify); the others exit at once on a signal.
static STOP_GRACEFULLY: AtomicBool = AtomicBool::new(false);

/// Installed first thing, so no signal finds the default handler. For `run` and `verify`: the
/// first SIGINT (Ctrl-C), SIGTERM (`timeout`, CI cancellation, `docker stop`) or SIGHUP (a
/// closed terminal): stop starting stages, let running ones notice, record what finished in the
/// manifest, exit 128 + the signal's number (130, 143, 129). A second one: exit at once — the
/// cache stays consistent either way, since every write is atomic.
pub fn install_signal_handlers() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
            // A closed terminal must not turn these messages into a panic.
            if !STOP_GRACEFULLY.load(Ordering::SeqCst) {
                // Nothing is being written yet (or the command only reads): stop now, but say
                // why, so a run stopped while it loads its pipeline is not a silent exit 143.
                let _ = writeln!(std::io::stderr(), "\n{name}: interrupted");
                std::process::exit(128 + signal);
            }
            if exec::CANCELLED.swap(true, Ordering::SeqCst) {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n{name} again: interrupted, quitting now"
                );
                std::process::exit(128 + signal);
            }
            STOP_SIGNAL.store(signal, Ordering::SeqCst);
            let _ = writeln!(
                std::io::stderr(),
                "\n{name}: stopping after running stages notice (send it again to quit now)"
            );
        }
    });
}

/// From now on a signal stops the command gracefully instead of ending the process.
pub fn stop_gracefully() {
    STOP_GRACEFULLY.store(true, Ordering::SeqCst);
}

/// The exit code for a run a signal stopped: 128 + its number, as shells report it.
pub fn stopped_by_signal() -> Option<ExitCode> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(ExitCode::from((128 + signal) as u8)),
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`cairn metrics P | head`) would panic.
/// Restore the default: the process ends quietly, as other Unix tools do. Every cache write is
/// atomic, so dying mid-print never leaves a half-written entry.
pub fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
