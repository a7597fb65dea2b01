//! Generated code for the `datatrust.v1` gRPC contract in `proto/datatrust/v1`.
//!
//! Only the server and the CLI use this crate; the domain core never sees wire types.
//! `convert` turns wire values into validated core types (naming the field when it cannot)
//! and core values into wire messages.

pub mod codec;
pub mod convert;

/// The `datatrust.v1` package: messages, clients and servers.
#[allow(clippy::all, clippy::pedantic)] // generated code is not ours to lint
pub mod v1 {
    tonic::include_proto!("datatrust.v1");
}

/// Encoded `FileDescriptorSet` of every datatrust proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/datatrust_descriptor.bin"));
