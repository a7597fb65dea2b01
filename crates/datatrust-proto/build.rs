//! Compiles proto/datatrust/v1 with protox (pure Rust, no system protoc) and tonic-prost-build.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(proto_root.join("datatrust/v1"))? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "proto")
        {
            files.push(path);
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let file_descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The encoded descriptor set feeds gRPC server reflection.
    std::fs::write(
        out_dir.join("datatrust_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;
    // JSON for the member portal's HTTP transport (`datatrust-server/src/portal.rs`): the
    // same messages, field names in snake_case, bytes as arrays of numbers.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are the caller's error: see `src/codec.rs`.
        .codec_path("crate::codec::DatatrustCodec")
        .message_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .enum_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .compile_fds(file_descriptors)?;
    Ok(())
}
