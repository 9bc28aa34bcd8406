//! The agent process's own resident memory and CPU use, from `/proc/self`.

use std::time::Instant;

/// glibc's `malloc` threshold (bytes) from which an allocation gets its own `mmap`, returned to
/// the system when freed: its default starting value, kept fixed.
pub const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// How many heap arenas glibc's `malloc` may make (its default: eight per core).
pub const MALLOC_ARENAS: i32 = 2;

/// What [`keep_memory_flat`] did with one of malloc's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MallocSetting {
    /// Set to the agent's value.
    Set,
    /// The environment sets it (`MALLOC_…_` variables, `GLIBC_TUNABLES`): left as it says.
    FromEnvironment,
    /// Not glibc, or glibc refused.
    Unchanged,
}

/// What [`keep_memory_flat`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MallocSettings {
    /// [`MMAP_THRESHOLD_BYTES`].
    pub mmap_threshold: MallocSetting,
    /// [`MALLOC_ARENAS`].
    pub arena_max: MallocSetting,
}

/// Keeps the resident memory flat across camera reconnections: every allocation of 128 KiB or
/// more (decoded frames, decoder and buffer-pool memory) gets its own mapping, given back to the
/// system when freed, and the heap has at most two arenas. Call it first thing in `main`, before
/// any thread starts. A variable of the environment that sets either wins.
///
/// Why: every reconnection builds a new pipeline, and with it new GStreamer and libav threads.
/// glibc gives each new thread one of up to eight arenas per core, and serves frame-sized
/// buffers from them once the first freed `mmap` has raised its dynamic threshold (up to
/// 32 MiB): each pipeline's frames land in other arenas, and the holes they leave when freed
/// stay resident. Measured with `benches/soak.rs` (4 cameras at 30 fps, one cut every 12 s, the
/// broker restarted every 2 minutes): with glibc's defaults the resident memory grew 54 MiB in
/// 8 minutes (+380 MiB/h) while heaptrack saw the live heap flat (no leak); with the threshold
/// fixed alone it grew +36 MiB/h, with two arenas alone +3 MiB/h. The README's "Benchmarks"
/// has the hour-long figures.
pub fn keep_memory_flat() -> MallocSettings {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let from_environment = |variable: &str, tunable: &str| {
        std::env::var_os(variable).is_some() || tunables.contains(tunable)
    };
    let set = |variable, tunable, param, value| {
        if from_environment(variable, tunable) {
            MallocSetting::FromEnvironment
        } else {
            mallopt(param, value)
        }
    };
    MallocSettings {
        mmap_threshold: set(
            "MALLOC_MMAP_THRESHOLD_",
            "glibc.malloc.mmap_threshold",
            MallocParam::MmapThreshold,
            MMAP_THRESHOLD_BYTES,
        ),
        arena_max: set(
            "MALLOC_ARENA_MAX",
            "glibc.malloc.arena_max",
            MallocParam::ArenaMax,
            MALLOC_ARENAS,
        ),
    }
}

#[derive(Clone, Copy)]
enum MallocParam {
    MmapThreshold,
    ArenaMax,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallopt(param: MallocParam, value: i32) -> MallocSetting {
    let param = match param {
        // Setting it also turns glibc's dynamic adjustment off (mallopt(3)).
        MallocParam::MmapThreshold => libc::M_MMAP_THRESHOLD,
        MallocParam::ArenaMax => libc::M_ARENA_MAX,
    };
    // SAFETY: mallopt only changes malloc's parameters.
    match unsafe { libc::mallopt(param, value) } {
        1 => MallocSetting::Set,
        _ => MallocSetting::Unchanged,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn mallopt(_param: MallocParam, _value: i32) -> MallocSetting {
    MallocSetting::Unchanged
}

/// One reading of the process figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessSample {
    pub rss_bytes: u64,
    /// CPU time used since the previous sample, as a share of one core (1.0 = one core busy).
    pub cpu_cores: f64,
}

/// Keeps the previous CPU reading so each sample reports the interval since.
#[derive(Debug)]
pub struct ProcessSampler {
    previous: Option<(Instant, f64)>,
    page_size: u64,
    ticks_per_second: f64,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        ProcessSampler::new()
    }
}

impl ProcessSampler {
    pub fn new() -> ProcessSampler {
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        ProcessSampler {
            previous: None,
            page_size: if page_size > 0 {
                page_size as u64
            } else {
                4096
            },
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// Reads `/proc/self`; `None` where it is not available.
    pub fn sample(&mut self) -> Option<ProcessSample> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let cpu_seconds = (utime + stime) / self.ticks_per_second;
        let now = Instant::now();
        let cpu_cores = match self.previous {
            Some((then, previous_cpu)) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    (cpu_seconds - previous_cpu).max(0.0) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.previous = Some((now, cpu_seconds));
        Some(ProcessSample {
            rss_bytes: rss_pages * self.page_size,
            cpu_cores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_malloc_settings() {
        // The test runner's environment sets neither (CI's does not); glibc refuses a setting
        // it does not know, which would show here as `Unchanged`.
        let expected = if cfg!(all(target_os = "linux", target_env = "gnu")) {
            MallocSetting::Set
        } else {
            MallocSetting::Unchanged
        };
        let settings = keep_memory_flat();
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        for (name, tunable, setting) in [
            (
                "MALLOC_MMAP_THRESHOLD_",
                "glibc.malloc.mmap_threshold",
                settings.mmap_threshold,
            ),
            (
                "MALLOC_ARENA_MAX",
                "glibc.malloc.arena_max",
                settings.arena_max,
            ),
        ] {
            if std::env::var_os(name).is_none() && !tunables.contains(tunable) {
                assert_eq!(setting, expected, "{name}");
            } else {
                assert_eq!(setting, MallocSetting::FromEnvironment, "{name}");
            }
        }
    }

    #[test]
    fn reads_this_process() {
        let mut sampler = ProcessSampler::new();
        let first = sampler.sample().expect("/proc/self is readable on Linux");
        assert!(first.rss_bytes > 1_000_000, "{first:?}");
        // Burn some CPU so the second sample sees it.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let second = sampler.sample().unwrap();
        assert!(
            second.cpu_cores > 0.2 && second.cpu_cores < 4.0,
            "{second:?}"
        );
    }
}
