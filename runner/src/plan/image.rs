//! What a plan writes into its linear memory as it is instantiated: the active data
//! segments of its core modules. Their size decides how VU memories are laid out
//! (`layout`), and for the memories the runner makes (`memories`) the segments become the
//! memory image every VU maps copy-on-write; wasmtime is then given the plan with those
//! segments emptied (`without_active_data`), so that it does not write them again.

use wasmparser::{BinaryReader, DataKind, DataSectionReader, Encoding, Operator, Parser, Payload};

/// The data a plan's instantiation writes into linear memory.
#[derive(Debug, Default)]
pub struct PlanData {
    /// Bytes of every active data segment of every core module.
    pub bytes: u64,
    /// The memory's first bytes as the segments leave them, when the plan defines one
    /// linear memory, only one module writes segments into it, at constant offsets, and
    /// they end within the memory's initial size.
    pub image: Option<Vec<u8>>,
}

/// Reads the data segments of the component `bytes`; `None` if it cannot be parsed.
pub fn read(bytes: &[u8]) -> Option<PlanData> {
    let mut total = 0u64;
    let (mut modules, mut memories) = (0usize, 0u32);
    // The defined memory's initial size in bytes (of the last one, if there are several).
    let mut initial = 0u64;
    // (module, offset, bytes) of each active segment, or `None` once one cannot be placed.
    let mut segments: Option<Vec<(usize, u64, &[u8])>> = Some(Vec::new());
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::Version { encoding: Encoding::Module, .. } => modules += 1,
            Payload::MemorySection(section) => {
                memories += section.count();
                for memory in section {
                    let memory = memory.ok()?;
                    // With custom page sizes, the initial size may end inside a host page,
                    // short of the image's last page: no image then.
                    let default_pages = memory.page_size_log2.is_none_or(|log2| log2 == 16);
                    initial = if default_pages { memory.initial.saturating_mul(65_536) } else { 0 };
                }
            }
            Payload::DataSection(section) => {
                for data in section {
                    let data = data.ok()?;
                    let DataKind::Active { memory_index, offset_expr } = data.kind else { continue };
                    total += data.data.len() as u64;
                    let offset = match offset_expr.get_operators_reader().read().ok()? {
                        Operator::I32Const { value } => u64::from(value.cast_unsigned()),
                        Operator::I64Const { value } => value.cast_unsigned(),
                        _ => u64::MAX,
                    };
                    segments = segments.filter(|_| memory_index == 0 && offset != u64::MAX);
                    if let Some(list) = &mut segments {
                        list.push((modules, offset, data.data));
                    }
                }
            }
            _ => {}
        }
    }
    let image = segments.filter(|list| memories == 1 && list.windows(2).all(|w| w[0].0 == w[1].0)).and_then(|list| {
        let end = list.iter().map(|&(_, offset, data)| offset.checked_add(data.len() as u64)).max()??;
        if end > initial {
            return None;
        }
        let mut image = vec![0u8; usize::try_from(end).ok()?];
        for (_, offset, data) in list {
            let at = usize::try_from(offset).ok()?;
            image[at..at + data.len()].copy_from_slice(data);
        }
        Some(image)
    });
    Some(PlanData { bytes: total, image })
}

/// The component or core module `bytes` with every active data segment emptied: same
/// segments, memories and offsets, no bytes. For plans whose memories the runner makes
/// starting as the image (`PlanData::image`), where wasmtime would otherwise write every
/// segment over the image's own pages as each VU is instantiated, making them the VU's
/// own: at 10,000 VUs that copy was 9 % of the start (`perf record`). An empty segment
/// keeps what instantiation checks (its offset is within the initial memory, as the image
/// ends there) and what the code sees (active segments are dropped after instantiation,
/// and a dropped segment reads as empty). `None` if `bytes` cannot be parsed.
pub fn without_active_data(bytes: &[u8]) -> Option<Vec<u8>> {
    let (header, mut rest) = bytes.split_at_checked(8)?;
    // A component's header ends in layer 1, a core module's in layer 0.
    let component = header[6..] == [1, 0];
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(header);
    while let [id, after_id @ ..] = rest {
        let mut reader = BinaryReader::new(after_id, 0);
        let size = usize::try_from(reader.read_var_u32().ok()?).ok()?;
        let start = 1 + reader.current_position();
        let contents = rest.get(start..start.checked_add(size)?)?;
        // Core modules (1) and nested components (4) inside a component; a module's data (11).
        let rewritten = match (component, id) {
            (true, 1 | 4) => Some(without_active_data(contents)?),
            (false, 11) => Some(empty_active_segments(contents)?),
            _ => None,
        };
        match rewritten {
            Some(section) => {
                out.push(*id);
                leb128(&mut out, section.len());
                out.extend_from_slice(&section);
            }
            None => out.extend_from_slice(&rest[..start + size]),
        }
        rest = &rest[start + size..];
    }
    Some(out)
}

/// A data section's contents with every active segment's bytes removed.
fn empty_active_segments(section: &[u8]) -> Option<Vec<u8>> {
    let reader = DataSectionReader::new(BinaryReader::new(section, 0)).ok()?;
    let mut out = Vec::with_capacity(16);
    leb128(&mut out, usize::try_from(reader.count()).ok()?);
    for data in reader {
        let data = data.ok()?;
        let start = usize::try_from(data.range.start).ok()?;
        match data.kind {
            DataKind::Active { offset_expr, .. } => {
                // The flags, memory index and offset expression as they were, then no bytes.
                let end = usize::try_from(offset_expr.get_binary_reader().range().end).ok()?;
                out.extend_from_slice(section.get(start..end)?);
                out.push(0);
            }
            DataKind::Passive => out.extend_from_slice(section.get(start..usize::try_from(data.range.end).ok()?)?),
        }
    }
    Some(out)
}

/// Appends `value` as an unsigned LEB128 number.
fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with `memories` memories (one page each) and one active segment at
    /// `offset` (an `i32.const` expression, or `global.get 0` when `None`) holding `abc`.
    fn module(memories: u8, offset: Option<u8>) -> Vec<u8> {
        match offset {
            Some(at) => module_with(memories, &[0x00, 0x41, at, 0x0b]),
            None => module_with(memories, &[0x00, 0x23, 0x00, 0x0b]),
        }
    }

    /// A core module with `memories` memories (one page each) and one segment holding
    /// `abc`, whose flags and offset expression are `head`.
    fn module_with(memories: u8, head: &[u8]) -> Vec<u8> {
        let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        m.extend([0x05, 1 + 2 * memories, memories]);
        for _ in 0..memories {
            m.extend([0x00, 0x01]);
        }
        let segment = [head, &[0x03, b'a', b'b', b'c']].concat();
        m.extend([0x0b, 1 + segment.len() as u8, 0x01]);
        m.extend(segment);
        m
    }

    #[test]
    fn one_memory_with_constant_offsets_makes_an_image() {
        let data = read(&module(1, Some(16))).expect("parses");
        assert_eq!(data.bytes, 3);
        let image = data.image.expect("an image");
        assert_eq!(image.len(), 19);
        assert_eq!(&image[16..], b"abc");
        assert!(image[..16].iter().all(|&b| b == 0));
    }

    #[test]
    fn other_memories_or_offsets_make_no_image_but_are_counted() {
        let two = read(&module(2, Some(0))).expect("parses");
        assert_eq!((two.bytes, two.image), (3, None));
        let global = read(&module(1, None)).expect("parses");
        assert_eq!((global.bytes, global.image), (3, None));
        assert!(read(b"not wasm").is_none());
    }

    #[test]
    fn segments_past_the_initial_memory_make_no_image() {
        // One page is 65,536 bytes: three bytes at 65,535 end past it.
        let data = read(&module_with(1, &[0x00, 0x41, 0xff, 0xff, 0x03, 0x0b])).expect("parses");
        assert_eq!((data.bytes, data.image), (3, None));
    }

    /// `module` inside a component, as a core module section.
    fn component(module: &[u8]) -> Vec<u8> {
        let mut c = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01];
        leb128(&mut c, module.len());
        c.extend_from_slice(module);
        c
    }

    #[test]
    fn emptied_segments_keep_their_place_and_the_rest_of_the_plan() {
        let plan = component(&module(1, Some(16)));
        let stripped = without_active_data(&plan).expect("rewrites");
        assert_eq!(stripped.len(), plan.len() - 3, "only the segment's three bytes are gone");
        let data = read(&stripped).expect("parses");
        assert_eq!(data.bytes, 0);
        assert_eq!(data.image.expect("an image of the same extent").len(), 16);
        let mut features = wasmparser::WasmFeatures::default();
        features.insert(wasmparser::WasmFeatures::COMPONENT_MODEL);
        wasmparser::Validator::new_with_features(features).validate_all(&stripped).expect("still valid");
        assert!(without_active_data(&plan[..plan.len() - 1]).is_none(), "a cut plan");
    }

    #[test]
    fn passive_segments_are_kept_whole() {
        let m = module_with(1, &[0x01]);
        assert_eq!(read(&m).expect("parses").bytes, 0, "a passive segment is not written at instantiation");
        let stripped = without_active_data(&m).expect("rewrites");
        assert_eq!(stripped, m);
    }
}
