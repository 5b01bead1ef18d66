//! Shared code of ferrolite's fuzz targets: the run harness, an owned model description that
//! can be decoded, edited and re-encoded, and the structure-aware mutator.

pub mod desc;
pub mod harness;
pub mod mutate;

#[cfg(test)]
mod tests {
    use crate::desc::ModelDesc;
    use crate::mutate::FIXTURES;

    /// Decoding then encoding keeps everything the description holds, and the result loads
    /// and prepares exactly when the original does: otherwise the structure-aware target
    /// would spend its time on models broken by the round trip rather than by its edits.
    #[test]
    fn fixtures_round_trip() {
        for (i, f) in FIXTURES.iter().enumerate() {
            let d = ModelDesc::decode(f).unwrap_or_else(|| panic!("fixture {i} decodes"));
            let bytes = d.encode();
            assert_eq!(ModelDesc::decode(&bytes).as_ref(), Some(&d), "fixture {i}");
            let limits = ferrolite::Limits::default();
            let a = crate::harness::prepare(f.to_vec(), &limits, 1).is_some();
            let b = crate::harness::prepare(bytes, &limits, 1).is_some();
            assert_eq!(
                a, b,
                "fixture {i} prepares differently after the round trip"
            );
        }
    }
}
