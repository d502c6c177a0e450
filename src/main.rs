//! The `graft` binary: command-line wiring only; every decision lives in the library crates.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The Kubernetes API version graft is built against (the `k8s-openapi` feature chosen in Cargo.toml).
const KUBERNETES_API: &str = "1.34";

/// graft: a GitOps-native reconciler with OpenKruise-compatible workload controllers.
#[derive(Parser, Debug)]
#[command(name = "graft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions of every kind graft serves, or write one file per CRD.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing to stdout.
        #[arg(long, env = "GRAFT_CRDS_OUT_DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Print graft's version and the Kubernetes API version it is built against.
    Version,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => crds(out_dir),
        Command::Version => {
            println!("graft {}", env!("CARGO_PKG_VERSION"));
            println!("kubernetes api {KUBERNETES_API}");
            Ok(())
        }
    }
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let crds = graft_api::crds::all();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in &crds {
                let path = dir.join(graft_api::crds::file_name(crd));
                let yaml = graft_api::crds::to_yaml(crd)
                    .with_context(|| format!("serializing CRD {:?}", crd.metadata.name))?;
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        None => {
            let mut out = String::new();
            for crd in &crds {
                out.push_str("---\n");
                out.push_str(
                    &graft_api::crds::to_yaml(crd)
                        .with_context(|| format!("serializing CRD {:?}", crd.metadata.name))?,
                );
            }
            print!("{out}");
        }
    }
    Ok(())
}
