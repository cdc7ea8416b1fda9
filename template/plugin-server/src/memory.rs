//! Hands freed heap memory back to the system after a burst. glibc's
//! allocator keeps it otherwise, and the pod's memory limit counts it: a
//! burst of connections or a large answer would leave the plugin's resident
//! memory near its peak for good.

use std::time::Duration;

/// Trims the heap every `interval` on a background thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_every(interval: Duration) {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    let spawned = std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                // SAFETY: malloc_trim takes no pointer and may be called from
                // any thread at any time.
                unsafe { malloc_trim(0) };
            }
        });
    if let Err(error) = spawned {
        log::warn!("cannot start the memory trimmer: {error}");
    }
}

/// Other allocators give memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_every(_interval: Duration) {}
