//! Writes every CRD to a directory (default `deploy/crds`), one file per CRD.
//! `cargo run -p graft-api --example gen_crds [DIR]`; `graft crds --out-dir DIR` does the same.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds"));
    std::fs::create_dir_all(&dir)?;
    for crd in graft_api::crds::all() {
        let path = dir.join(graft_api::crds::file_name(&crd));
        let yaml = graft_api::crds::to_yaml(&crd)?;
        println!("{} {} bytes", path.display(), yaml.len());
        std::fs::write(path, yaml)?;
    }
    Ok(())
}
