//! The example's pipeline and data, copied into a temp workspace.

pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(src.join("mlcycle.yaml"), dir.path().join("mlcycle.yaml")).unwrap();
    std::fs::copy(
        src.join("data/words.txt"),
        dir.path().join("data/words.txt"),
    )
    .unwrap();
    dir
}
