//! The agent process's own resident memory and CPU use, from `/proc/self`.

use std::time::Instant;

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
