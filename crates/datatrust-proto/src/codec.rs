//! The gRPC codec of every datatrust service: prost's, except that a message that does not
//! decode is the sender's error (INVALID_ARGUMENT), not the trust's (INTERNAL). INTERNAL is
//! kept for the trust's own faults, so that alerting on it means something.

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder};

/// `tonic_prost::ProstCodec` with decode failures answered as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct DatatrustCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for DatatrustCodec<T, U> {
    fn default() -> Self {
        DatatrustCodec(ProstCodec::default())
    }
}

impl<T, U> Codec for DatatrustCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = DatatrustDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        DatatrustDecoder(self.0.decoder())
    }
}

/// Decodes with prost; a malformed message is INVALID_ARGUMENT.
#[derive(Debug)]
pub struct DatatrustDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for DatatrustDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buffer).map_err(|status| {
            if status.code() == tonic::Code::Internal {
                Status::invalid_argument(format!(
                    "the message is not valid protobuf for this method: {}",
                    status.message()
                ))
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
