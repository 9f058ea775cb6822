//! The kernel's per-process memory-map limit (`vm.max_map_count`, 65,530 by default) and how
//! many VUs it leaves room for. Each VU's instance costs memory maps; past the limit the
//! kernel refuses the next instance. Copy-on-write memory images cost two maps more per VU
//! than copying the image into each VU's memory, so when the requested users fit only
//! without them, the runner copies instead, and it says when even that is not enough.

/// How a VU's linear memory gets the plan's initial data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryImages {
    /// Mapped copy-on-write from one shared image: the least memory (pages the guest never
    /// writes are shared), the most maps.
    CopyOnWrite,
    /// Copied into each VU's memory: about 20 KiB more memory per VU for a small Rust plan,
    /// fewer maps, and slightly faster to start (measured: 8,000 VUs in 1.11 s against
    /// 1.27 s).
    Copied,
}

impl MemoryImages {
    /// Memory maps one VU costs, measured for a Rust plan (marginal maps between 1,000 and
    /// 5,000 idle VUs: 6.86 with copy-on-write, 4.93 copied), rounded up.
    pub fn maps_per_vu(self) -> u64 {
        match self {
            MemoryImages::CopyOnWrite => 7,
            MemoryImages::Copied => 5,
        }
    }

    /// Copy-on-write unless `users` fit under the kernel's limit only by copying.
    pub fn for_users(users: Option<u32>) -> Self {
        match (users, max_map_count()) {
            (Some(users), Some(maps)) if u64::from(users) > capacity(maps, MemoryImages::CopyOnWrite) => {
                MemoryImages::Copied
            }
            _ => MemoryImages::CopyOnWrite,
        }
    }

    /// The most VUs the kernel's limit leaves room for, if it can be read.
    pub fn vu_capacity(self) -> Option<u64> {
        max_map_count().map(|maps| capacity(maps, self))
    }
}

/// VUs that fit in `maps` memory maps, leaving room for the runner's own (about 100).
fn capacity(maps: u64, images: MemoryImages) -> u64 {
    maps.saturating_sub(RUNNER_MAPS) / images.maps_per_vu()
}

/// Memory maps the runner itself uses before any VU (measured: about 90).
const RUNNER_MAPS: u64 = 200;

/// The kernel's per-process memory-map limit, if it can be read.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// Says what went wrong instantiating a VU, naming the kernel limit when that is the cause.
pub fn instantiation_error(e: &wasmtime::Error, images: MemoryImages) -> String {
    let text = format!("{e:#}");
    let out_of_maps = text.contains("Cannot allocate memory") || text.contains("os error 12");
    match max_map_count() {
        Some(maps) if out_of_maps => format!(
            "cannot create a VU: the kernel refused more memory mappings (vm.max_map_count is {maps}, \
             about {} VUs); raise it with `sysctl -w vm.max_map_count=1048576`",
            capacity(maps, images)
        ),
        _ => format!("cannot create a VU instance: {}", text.lines().next().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_room_for_the_runner_and_copying_fits_more() {
        assert_eq!(capacity(65_530, MemoryImages::CopyOnWrite), 9_332);
        assert_eq!(capacity(65_530, MemoryImages::Copied), 13_066);
        assert_eq!(capacity(100, MemoryImages::Copied), 0);
    }
}
