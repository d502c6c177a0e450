//! Compiles the vendored CRI v1 API (`proto/api.proto`, k8s.io/cri-api v0.34.4) into tonic client and
//! server stubs with `protox`, so no `protoc` is needed on the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let fds = protox::compile(["api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The fake CRI server implements only the calls graft uses; the rest answer Unimplemented.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
