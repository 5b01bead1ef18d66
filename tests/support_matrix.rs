//! The README's operator support matrix is generated from the kernel registry.
//! Regenerate it with `FERROLITE_BLESS=1 cargo test --test support_matrix`.

use std::path::PathBuf;

const START: &str = "<!-- support-matrix:start -->\n";
const END: &str = "<!-- support-matrix:end -->";

#[test]
fn readme_matrix_matches_the_registry() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md has no support-matrix markers");
    };
    let current = &readme[a + START.len()..b];
    let generated = ferrolite::support_matrix();
    if current != generated {
        if std::env::var("FERROLITE_BLESS").is_ok() {
            let updated = format!("{}{START}{generated}{}", &readme[..a], &readme[b..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "README.md's support matrix is out of date; rerun with FERROLITE_BLESS=1.\n\
                 expected:\n{generated}"
            );
        }
    }
}

#[test]
fn every_listed_operator_is_prepared_by_some_family() {
    // A listed operator must not fall through to "not implemented".
    let ops = ferrolite::supported_ops();
    assert!(ops.len() >= 14);
    let mut names: Vec<_> = ops
        .iter()
        .map(|s| s.op.variant_name().unwrap_or("?"))
        .collect();
    names.dedup();
    assert_eq!(names.len(), ops.len(), "an operator is listed twice");
}
