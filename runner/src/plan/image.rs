//! What a plan writes into its linear memory as it is instantiated: the active data
//! segments of its core modules. Their size decides how VU memories are laid out
//! (`layout`), and for the memories the runner makes (`memories`) the segments become the
//! memory image every VU maps copy-on-write.

use wasmparser::{DataKind, Encoding, Operator, Parser, Payload};

/// The data a plan's instantiation writes into linear memory.
#[derive(Debug, Default)]
pub struct PlanData {
    /// Bytes of every active data segment of every core module.
    pub bytes: u64,
    /// The memory's first bytes as the segments leave them, when the plan defines one
    /// linear memory and only one module writes segments into it, at constant offsets.
    pub image: Option<Vec<u8>>,
}

/// Reads the data segments of the component `bytes`; `None` if it cannot be parsed.
pub fn read(bytes: &[u8]) -> Option<PlanData> {
    let mut total = 0u64;
    let (mut modules, mut memories) = (0usize, 0u32);
    // (module, offset, bytes) of each active segment, or `None` once one cannot be placed.
    let mut segments: Option<Vec<(usize, u64, &[u8])>> = Some(Vec::new());
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::Version { encoding: Encoding::Module, .. } => modules += 1,
            Payload::MemorySection(section) => memories += section.count(),
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
        let mut image = vec![0u8; usize::try_from(end).ok()?];
        for (_, offset, data) in list {
            let at = usize::try_from(offset).ok()?;
            image[at..at + data.len()].copy_from_slice(data);
        }
        Some(image)
    });
    Some(PlanData { bytes: total, image })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with `memories` memories (one page each) and one active segment at
    /// `offset` (an `i32.const` expression, or `global.get 0` when `None`) holding `abc`.
    fn module(memories: u8, offset: Option<u8>) -> Vec<u8> {
        let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        m.extend([0x05, 1 + 2 * memories, memories]);
        for _ in 0..memories {
            m.extend([0x00, 0x01]);
        }
        let expr: &[u8] = &match offset {
            Some(at) => [0x41, at, 0x0b],
            None => [0x23, 0x00, 0x0b],
        };
        let segment = [&[0x00][..], expr, &[0x03, b'a', b'b', b'c']].concat();
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
}
