//! Load on a running plugin, from this process, on loopback only: a bounded
//! soak and a slow-client (slowloris) attack beside well-behaved traffic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::argocd::Controller;
use crate::example::Example;

/// Resident memory of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// Peak resident memory of `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()
}

#[derive(Debug)]
pub struct Soak {
    pub requests: u64,
    pub errors: u64,
    /// (seconds since start, RSS KiB), sampled every 250 ms.
    pub rss: Vec<(f64, u64)>,
}

impl Soak {
    /// Largest RSS after the first quarter minus the RSS at its end.
    pub fn growth_after_warm_up_kib(&self) -> i64 {
        let total = self.rss.last().map_or(0.0, |(t, _)| *t);
        let warm: Vec<u64> = self
            .rss
            .iter()
            .filter(|(t, _)| *t <= total / 4.0)
            .map(|(_, r)| *r)
            .collect();
        let after: Vec<u64> = self
            .rss
            .iter()
            .filter(|(t, _)| *t > total / 4.0)
            .map(|(_, r)| *r)
            .collect();
        let baseline = warm.last().copied().unwrap_or(0) as i64;
        after.iter().copied().max().unwrap_or(0) as i64 - baseline
    }
}

/// `clients` keep-alive clients send the project's example request to the
/// plugin (process `pid`) for `duration`, while its RSS is sampled; a request
/// that does not get the example's answer counts as an error.
pub fn soak(
    addr: SocketAddr,
    token: &str,
    pid: u32,
    example: &Example,
    clients: usize,
    duration: Duration,
) -> Soak {
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, requests, errors) = (stop.clone(), requests.clone(), errors.clone());
            let token = token.to_owned();
            let example = example.clone();
            std::thread::spawn(move || {
                let mut controller = Controller::new(addr, &token);
                while !stop.load(Ordering::Relaxed) {
                    match controller.post(&example.request) {
                        Ok(sets) if sets == example.sets => {
                            requests.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < duration {
        if let Some(kib) = rss_kib(pid) {
            rss.push((started.elapsed().as_secs_f64(), kib));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    Soak {
        requests: requests.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        rss,
    }
}

#[derive(Debug)]
pub struct SlowlorisReport {
    pub idle_connections: usize,
    pub slow_clients: usize,
    /// Latencies of the well-behaved client before and during the attack, ms.
    pub before_ms: Vec<f64>,
    pub during_ms: Vec<f64>,
    pub failed_requests: usize,
    /// Slow clients the plugin had closed by the end, and after how long.
    pub slow_dropped: usize,
    pub slowest_drop: Duration,
    /// Whether an idle keep-alive connection still served a request at the end.
    pub idle_still_served: bool,
}

/// Opens `idle` keep-alive connections (one request each, then idle) and
/// `slow` clients that send their headers a byte every 200 ms, then measures
/// a well-behaved client; waits up to `drop_within` for the slow ones to be cut.
pub fn slowloris(
    addr: SocketAddr,
    token: &str,
    example: &Example,
    idle: usize,
    slow: usize,
    drop_within: Duration,
) -> SlowlorisReport {
    let mut probe = Controller::new(addr, token);
    let mut measure = |count: usize, failed: &mut usize| -> Vec<f64> {
        (0..count)
            .map(|_| {
                let started = Instant::now();
                if probe.post(&example.request).is_err() {
                    *failed += 1;
                }
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect()
    };
    let mut failed = 0;
    let before_ms = measure(200, &mut failed);

    let mut idle_connections: Vec<Controller> = (0..idle)
        .map(|_| {
            let mut controller = Controller::new(addr, token);
            if controller.post(&example.request).is_err() {
                failed += 1;
            }
            controller
        })
        .collect();

    let attack_started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let slow_threads: Vec<_> = (0..slow)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || -> Option<Duration> {
                let mut stream = TcpStream::connect(addr).ok()?;
                stream
                    .set_read_timeout(Some(Duration::from_millis(1)))
                    .ok()?;
                let head = b"POST /api/v1/getparams.execute HTTP/1.1\r\nHost: plugin\r\nX-Slow: ";
                let started = Instant::now();
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    if stream.write_all(&[byte]).is_err() {
                        return Some(started.elapsed());
                    }
                    sent += 1;
                    let mut buffer = [0u8; 256];
                    match stream.read(&mut buffer) {
                        // Closed, or answered (408): either way, dropped.
                        Ok(_) => return Some(started.elapsed()),
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return Some(started.elapsed()),
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                None
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    let during_ms = measure(200, &mut failed);
    let idle_still_served = idle_connections
        .last_mut()
        .is_some_and(|controller| controller.post(&example.request).is_ok());

    while attack_started.elapsed() < drop_within && slow_threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let drops: Vec<Duration> = slow_threads
        .into_iter()
        .filter_map(|t| t.join().ok().flatten())
        .collect();
    SlowlorisReport {
        idle_connections: idle_connections.len(),
        slow_clients: slow,
        before_ms,
        during_ms,
        failed_requests: failed,
        slow_dropped: drops.len(),
        slowest_drop: drops.iter().copied().max().unwrap_or_default(),
        idle_still_served,
    }
}

/// The `p`-th percentile (0..=100) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
