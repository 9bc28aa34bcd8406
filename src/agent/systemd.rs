//! The systemd service contract (`Type=notify`, `WatchdogSec=`), without a dependency: a
//! datagram to `$NOTIFY_SOCKET`.
//!
//! - `READY=1` once the cameras have been started (the agent is doing its job; a camera that
//!   cannot connect yet is retried, not a start failure).
//! - `WATCHDOG=1` every third of `$WATCHDOG_USEC`, sent by the supervisor only while the frame
//!   path is alive: no inference thread has been busy on one frame for longer than
//!   [`WEDGED_AFTER`]. A wedged thread stops the pings, and systemd restarts the service.
//! - `STOPPING=1` when shutdown begins.
//!
//! Outside systemd (`$NOTIFY_SOCKET` unset) every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// An inference thread busy on one frame for longer than this is wedged (one inference takes
/// tens of milliseconds on the boxes watchpost runs on).
pub const WEDGED_AFTER: Duration = Duration::from_secs(20);

/// Where and how often to tell systemd.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives the service (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|path| match UnixDatagram::unbound() {
                Ok(socket) => Some((socket, path)),
                Err(e) => {
                    tracing::warn!(error = %e, "systemd notification socket not usable");
                    None
                }
            });
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier { socket, watchdog }
    }

    /// How often to ping the watchdog, if systemd wants pings.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|w| w / 3)
    }

    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=running");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Pings the watchdog if the frame path is alive (`longest_busy` is the longest time an
    /// inference thread has been on its current frame); `false` when it is not, and no ping was
    /// sent.
    pub fn watchdog(&self, longest_busy: Duration) -> bool {
        if frame_path_alive(longest_busy) {
            self.send("WATCHDOG=1");
            true
        } else {
            false
        }
    }

    fn send(&self, message: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        if let Err(e) = send_to(socket, path, message) {
            tracing::debug!(error = %e, "systemd notification not sent");
        }
    }
}

fn send_to(socket: &UnixDatagram, path: &str, message: &str) -> io::Result<usize> {
    // `@name` is a socket in the abstract namespace.
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        socket.send_to_addr(message.as_bytes(), &address)
    } else {
        socket.send_to(message.as_bytes(), path)
    }
}

/// The watchdog period systemd asks for, if it is meant for this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The frame path is alive while no inference thread is stuck on one frame.
pub fn frame_path_alive(longest_busy: Duration) -> bool {
    longest_busy < WEDGED_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_from_the_environment() {
        let cases = [
            (Some("30000000"), None, Some(Duration::from_secs(30))),
            (Some("30000000"), Some("42"), Some(Duration::from_secs(30))),
            (Some("30000000"), Some("43"), None),
            (Some("0"), None, None),
            (Some("soon"), None, None),
            (None, None, None),
        ];
        for (usec, pid, expected) in cases {
            assert_eq!(
                watchdog_interval(usec, pid, 42),
                expected,
                "{usec:?} {pid:?}"
            );
        }
    }

    #[test]
    fn a_thread_stuck_on_one_frame_stops_the_pings() {
        assert!(frame_path_alive(Duration::ZERO));
        assert!(frame_path_alive(Duration::from_millis(80)));
        assert!(!frame_path_alive(WEDGED_AFTER));
        assert!(!frame_path_alive(Duration::from_secs(120)));
    }

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let notifier = Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), path.display().to_string())),
            watchdog: Some(Duration::from_secs(30)),
        };
        assert_eq!(notifier.ping_interval(), Some(Duration::from_secs(10)));
        notifier.ready();
        assert!(notifier.watchdog(Duration::from_millis(10)));
        assert!(!notifier.watchdog(Duration::from_secs(60)));
        notifier.stopping();
        let mut received = Vec::new();
        let mut buffer = [0u8; 256];
        for _ in 0..3 {
            let n = listener.recv(&mut buffer).unwrap();
            received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        assert_eq!(
            received,
            ["READY=1\nSTATUS=running", "WATCHDOG=1", "STOPPING=1"],
            "no ping while wedged"
        );
    }

    #[test]
    fn outside_systemd_nothing_happens() {
        let notifier = Notifier {
            socket: None,
            watchdog: Some(Duration::from_secs(30)),
        };
        assert_eq!(notifier.ping_interval(), None);
        notifier.ready();
        assert!(notifier.watchdog(Duration::ZERO));
    }
}
