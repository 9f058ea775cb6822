//! How VU memories are laid out so that the requested number of VUs fits in one process
//! under two kernel limits, and what to say when they do not:
//!
//! - memory maps (`vm.max_map_count`, 65,530 by default): each VU's instance costs a few.
//!   A host stack mapped on its own costs three more per VU than one carved from a shared
//!   arena (`stack_arena`), which keeps a page-table page per idle VU instead (4 KiB), and
//!   copy-on-write memory images cost two more than copying the image into each VU's memory
//!   (about 20 KiB more per VU while it runs). So when the users do not fit, the runner
//!   first carves stacks, then also copies images. A plan whose data segments are at most
//!   `HIBERNATE_IMAGES_UP_TO` (every Rust plan) has its image mapped into memories the
//!   runner makes (`memories`), so that its idle VUs can hibernate: they then keep a few
//!   hundred bytes of their memory instead of about 30 KiB. Such a memory costs as many maps
//!   as a copied one (its accessible part and the rest), and its VU's own host stack goes in
//!   the room below it, in the same mapping (`memories::take_room`), at no map of its own:
//!   for those plans carving stacks saves no maps.
//! - address space (128 TiB for a 64-bit Linux process): by default wasmtime reserves 4 GiB
//!   plus a 32 MiB guard for every linear memory, so that compiled code needs no bounds
//!   checks; that fills the address space at about 32,000 VUs (measured: 32,232 started, the
//!   rest failed with "Cannot allocate memory"). Past that the runner reserves
//!   `COMPACT_RESERVATION` per memory instead: compiled code then checks bounds (measured:
//!   1.4 % fewer requests per CPU-second), and a memory that grows past the reservation is
//!   moved. Packing memories closer also shares page tables: 5.3 instead of 8.3 KiB per idle
//!   VU.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::{COMPACT_RESERVATION, HIBERNATE_IMAGES_UP_TO};

/// How a VU's linear memory gets the plan's initial data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryImages {
    /// wasmtime's memories, mapped copy-on-write from one shared image: pages the guest never
    /// writes are shared; idle VUs cannot hibernate.
    CopyOnWrite,
    /// Memories the runner makes (`memories`), the image mapped copy-on-write from a shared
    /// memfd, and idle VUs hibernate: for plans whose data segments are small (a Rust plan's:
    /// about 24 KiB), whose memories then fit the runner's hibernation. One map more than
    /// `Copied`.
    Mapped,
    /// Memories the runner makes, the image copied into each (about 20 KiB more memory per
    /// VU of a small Rust plan while the VU runs; hibernated VUs keep only what differs):
    /// the fewest maps, and slightly faster to start (measured: 8,000 VUs in 1.11 s against
    /// 1.27 s).
    Copied,
}

/// Where a VU's host stack lives (`plan::stacks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackMaps {
    /// A mapping of its own, guard page by `mprotect`: two memory maps per VU (and a third
    /// where it splits a neighbour), and an idle VU's stack keeps no page tables. Where the
    /// runner maps the plan's image into the VU's memory (`MemoryImages::Mapped`), the room
    /// below that memory instead, in the memory's mapping: no map of its own, and its top
    /// pages share the memory's page-table page.
    Own,
    /// Carved from an arena, guard page by `MADV_GUARD_INSTALL` (Linux 6.13+): no memory
    /// map, but the guard keeps a 4 KiB page-table page per VU (measured: 12.1 against 8.2
    /// KiB of page tables per idle VU).
    Carved,
}

/// Memory maps one VU costs, measured for a Rust plan (marginal maps between 1,000 and
/// 3,000 or 5,000 idle VUs: 6.99 and 4.02 with wasmtime's copy-on-write, own and carved
/// stacks; 2.00 with images mapped and own stacks, the memory's accessible part and the stack
/// below it one mapping of the image's memfd, the guard page before them merged with the
/// inaccessible end of the next reservation (`memories`; 4.00 with stacks mapped on their
/// own, 5.00 before that); 4.93 and 1.93 copied), rounded up.
/// Carved, a VU leaves no spare maps when the kernel refuses it, and the runner's own maps
/// grow with the VUs (arenas, heap: 40,560 maps for 20,000 copied VUs with carved stacks),
/// so those are rounded up by one more, and so is the exact 2.00 (where reservations are
/// not next to each other, the guard page is a map of its own).
fn maps_per_vu(images: MemoryImages, stacks: StackMaps) -> u64 {
    match (images, stacks) {
        (MemoryImages::CopyOnWrite, StackMaps::Own) => 7,
        (MemoryImages::CopyOnWrite, StackMaps::Carved) => 5,
        (MemoryImages::Mapped, StackMaps::Own) => 3,
        (MemoryImages::Mapped, StackMaps::Carved) => 3,
        (MemoryImages::Copied, StackMaps::Own) => 5,
        (MemoryImages::Copied, StackMaps::Carved) => 3,
    }
}

/// The address space each VU's linear memory reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// wasmtime's default, 4 GiB: no bounds checks in compiled code.
    Full,
    /// `COMPACT_RESERVATION`: bounds checks, and room for more than 400,000 VUs.
    Compact,
}

impl Reservation {
    /// The bytes to reserve, or `None` for wasmtime's default.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Reservation::Full => None,
            Reservation::Compact => Some(COMPACT_RESERVATION),
        }
    }

    /// Address space one VU takes: the reservation, the guard after it, and its host stack
    /// (in the room before the memory, with the bytes that align them: `memories`).
    fn per_vu(self) -> u64 {
        self.bytes().unwrap_or(FULL_RESERVATION) + GUARD + STACK_ROOM
    }
}

/// The memory layout of every VU of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub images: MemoryImages,
    pub stacks: StackMaps,
    pub reservation: Reservation,
    /// `vm.max_map_count` when the layout was chosen, if it could be read: the choice, the
    /// warning before the run and every failed VU's message use the same reading.
    max_maps: Option<u64>,
}

impl Layout {
    /// For a plan whose data segments total `data_bytes` (`None`: unknown): images copied
    /// into memories the runner makes if they are small, else copy-on-write; own stacks and
    /// full reservations, unless `users` fit only without them.
    pub fn for_plan(users: Option<u32>, data_bytes: Option<u64>) -> Self {
        let small_images = data_bytes.is_some_and(|n| n <= HIBERNATE_IMAGES_UP_TO);
        Self::choose(users, max_map_count(), super::stack_arena::guards_supported(), small_images)
    }

    /// The layout for `users` under `max_maps`, where stacks can be carved or not.
    fn choose(users: Option<u32>, max_maps: Option<u64>, can_carve: bool, small_images: bool) -> Self {
        let users = users.map_or(0, u64::from);
        let carved = if can_carve { StackMaps::Carved } else { StackMaps::Own };
        // Each fits more VUs than the one before; the last fits the most. Small images the
        // runner maps cost no more maps than copied ones, and own stacks then go in the room
        // below the memory at no map of their own (`maps_per_vu`): nothing fits more.
        let (choices, most): (&[_], _) = if small_images {
            let most = (MemoryImages::Mapped, StackMaps::Own);
            (&[most], most)
        } else {
            let most = (MemoryImages::Copied, carved);
            (&[(MemoryImages::CopyOnWrite, StackMaps::Own), (MemoryImages::CopyOnWrite, carved), most], most)
        };
        let fits = |&&(images, stacks): &&(MemoryImages, StackMaps)| {
            max_maps.is_none_or(|maps| users <= maps_capacity(maps, images, stacks))
        };
        let (images, stacks) = choices.iter().find(fits).copied().unwrap_or(most);
        let reservation =
            if users > address_capacity(Reservation::Full) { Reservation::Compact } else { Reservation::Full };
        Self { images, stacks, reservation, max_maps }
    }

    /// The layout for a process that runs few instances (`build`'s checks).
    pub fn few() -> Self {
        Self::for_plan(Some(1), None)
    }

    /// What the user should know about this layout before the run: a line for each choice
    /// that differs from the default.
    pub fn notes(self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.stacks == StackMaps::Carved {
            notes.push(
                "Note: carving VU stacks from shared mappings (4 KiB more page tables per VU), so that this many \
                 users fit under the kernel's memory-map limit (vm.max_map_count)"
                    .to_owned(),
            );
        }
        if self.images == MemoryImages::Copied {
            notes.push(
                "Note: copying memory images into each VU instead of sharing them copy-on-write, so that this \
                 many users fit under the kernel's memory-map limit (vm.max_map_count)"
                    .to_owned(),
            );
        }
        if self.reservation == Reservation::Compact {
            notes.push(format!(
                "Note: reserving {} MiB of address space for each VU's memory instead of {} GiB, so that this \
                 many users fit in the process's address space (the plan's code then checks memory bounds)",
                COMPACT_RESERVATION >> 20,
                FULL_RESERVATION >> 30
            ));
        }
        notes
    }

    /// "about N VUs fit under ...; raise it with ...": the capacity and how to raise it.
    pub fn capacity_sentence(self) -> String {
        let (capacity, limit) = self.vu_capacity();
        format!("about {capacity} VUs fit {}", limit.explain())
    }

    /// A place for one more VU instance in this process, or why there is none.
    ///
    /// The kernel refuses a new instance's mappings once the process has `vm.max_map_count`,
    /// but so close to it the runner's own memory can fail too (malloc, or wasmtime
    /// splitting a mapping to unmap a failed instance, which it cannot survive), all the more
    /// as carved stacks leave a VU as few as two maps. So past the memory-map capacity VUs
    /// are refused here, before any of their maps is made. The address-space limit is left to
    /// the kernel: running out of it does not stop the runner's own memory.
    pub fn room(self) -> Result<Room, String> {
        let alive = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let room = Room(());
        match self.vu_capacity() {
            (capacity, Limit::Maps(_)) if alive >= capacity => {
                Err(format!("cannot create a VU: {}", self.capacity_sentence()))
            }
            _ => Ok(room),
        }
    }

    /// The most VUs this layout leaves room for, and which limit sets it.
    pub fn vu_capacity(self) -> (u64, Limit) {
        let address = address_capacity(self.reservation);
        match self.max_maps {
            Some(maps) if maps_capacity(maps, self.images, self.stacks) < address => {
                (maps_capacity(maps, self.images, self.stacks), Limit::Maps(maps))
            }
            _ => (address, Limit::AddressSpace(self.reservation.per_vu())),
        }
    }
}

/// VU instances alive in this process (each holding a [`Room`]).
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// One VU instance's share of the process's capacity ([`Layout::room`]); given back when
/// dropped.
#[derive(Debug)]
pub struct Room(());

impl Drop for Room {
    fn drop(&mut self) {
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The kernel limit that caps the number of VUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `vm.max_map_count`, with its value.
    Maps(u64),
    /// The process's address space, with the bytes one VU reserves.
    AddressSpace(u64),
}

impl Limit {
    /// What the limit is and how to raise it, after "about N VUs fit".
    pub fn explain(self) -> String {
        match self {
            Limit::Maps(maps) => format!(
                "under the kernel's memory-map limit (vm.max_map_count is {maps}); raise it with \
                 `sysctl -w vm.max_map_count=1048576`"
            ),
            Limit::AddressSpace(per_vu) => format!(
                "in the process's {} TiB of address space ({} MiB reserved per VU)",
                ADDRESS_SPACE >> 40,
                per_vu >> 20
            ),
        }
    }
}

/// wasmtime's default reservation for a 32-bit linear memory on 64-bit hosts.
const FULL_RESERVATION: u64 = 4 << 30;

/// wasmtime's default guard after a linear memory on 64-bit hosts.
const GUARD: u64 = 32 << 20;

/// Address space a VU's host stack takes with its memory, at most (`memories::Region::new`).
const STACK_ROOM: u64 = 4 << 20;

/// The address space VU memories may take: a 64-bit Linux process has 128 TiB, and the
/// runner's own heap, stacks and code take a little of it.
const ADDRESS_SPACE: u64 = 126 << 40;

/// Memory maps the runner itself uses before any VU (measured: about 90).
const RUNNER_MAPS: u64 = 200;

/// VUs that fit in `maps` memory maps, leaving room for the runner's own.
fn maps_capacity(maps: u64, images: MemoryImages, stacks: StackMaps) -> u64 {
    maps.saturating_sub(RUNNER_MAPS) / maps_per_vu(images, stacks)
}

/// VUs whose memories fit in the address space.
fn address_capacity(reservation: Reservation) -> u64 {
    ADDRESS_SPACE / reservation.per_vu()
}

/// The kernel's per-process memory-map limit, if it can be read.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// Says what went wrong instantiating a VU, naming the kernel limit when that is the cause.
pub fn instantiation_error(e: &wasmtime::Error, layout: Layout) -> String {
    let text = format!("{e:#}");
    if text.contains("Cannot allocate memory") || text.contains("os error 12") {
        return format!("cannot create a VU: the kernel refused more memory; {}", layout.capacity_sentence());
    }
    format!("cannot create a VU instance: {}", text.lines().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_room_for_the_runner_and_carving_and_copying_fit_more() {
        assert_eq!(maps_capacity(65_530, MemoryImages::CopyOnWrite, StackMaps::Own), 9_332);
        assert_eq!(maps_capacity(65_530, MemoryImages::CopyOnWrite, StackMaps::Carved), 13_066);
        assert_eq!(maps_capacity(65_530, MemoryImages::Mapped, StackMaps::Own), 21_776);
        assert_eq!(maps_capacity(65_530, MemoryImages::Mapped, StackMaps::Carved), 21_776);
        assert_eq!(maps_capacity(65_530, MemoryImages::Copied, StackMaps::Own), 13_066);
        assert_eq!(maps_capacity(65_530, MemoryImages::Copied, StackMaps::Carved), 21_776);
        assert_eq!(maps_capacity(100, MemoryImages::Copied, StackMaps::Carved), 0);
    }

    #[test]
    fn stacks_are_carved_before_images_are_copied() {
        let maps = Some(65_530);
        let at = |users: u32, can_carve| {
            let l = Layout::choose(Some(users), maps, can_carve, false);
            (l.images, l.stacks)
        };
        use MemoryImages::{Copied, CopyOnWrite};
        use StackMaps::{Carved, Own};
        assert_eq!(at(9_332, true), (CopyOnWrite, Own));
        assert_eq!(at(9_333, true), (CopyOnWrite, Carved));
        assert_eq!(at(13_066, true), (CopyOnWrite, Carved));
        assert_eq!(at(13_067, true), (Copied, Carved));
        assert_eq!(at(100_000, true), (Copied, Carved), "the most that fits when none does");
        assert_eq!(at(9_333, false), (Copied, Own), "without guard regions only copying helps");
        assert_eq!(Layout::choose(Some(1_000_000), None, true, false).stacks, Own, "no limit known: the default");
    }

    #[test]
    fn small_images_are_mapped_by_the_runner_with_stacks_in_the_room_below() {
        let at = |users: u32| {
            let l = Layout::choose(Some(users), Some(65_530), true, true);
            (l.images, l.stacks, l.notes().len())
        };
        use MemoryImages::Mapped;
        use StackMaps::Own;
        assert_eq!(at(1), (Mapped, Own, 0));
        assert_eq!(at(21_776), (Mapped, Own, 0));
        assert_eq!(at(21_777), (Mapped, Own, 0), "carving stacks or copying images would fit no more");
    }

    #[test]
    fn full_reservations_fill_the_address_space_near_the_measured_32_000_vus() {
        let full = address_capacity(Reservation::Full);
        assert!((31_000..32_232).contains(&full), "{full}");
        assert!(address_capacity(Reservation::Compact) > 400_000);
        assert_eq!(Layout::for_plan(Some(full as u32), None).reservation, Reservation::Full);
        assert_eq!(Layout::for_plan(Some(full as u32 + 1), None).reservation, Reservation::Compact);
        assert_eq!(Layout::for_plan(None, Some(1)).reservation, Reservation::Full);
    }
}
