//! Request bodies: `Content-Encoding` (gzip, deflate, snappy) and size limits, shared by
//! every HTTP collector.

use std::io::Read;

use axum::http::HeaderMap;

use crate::IngestError;

/// Largest decoded body a collector accepts: 64 MiB.
pub const MAX_DECODED_BYTES: usize = 64 << 20;

/// Undoes `Content-Encoding` (`gzip`, `deflate`, `snappy` raw; none or `identity`
/// leaves the body as it is). Refuses bodies that decode to more than
/// [`MAX_DECODED_BYTES`]. A refusal is counted as an `encoding` rejection of
/// `collector`.
pub fn content_decoded(
    headers: &HeaderMap,
    body: &[u8],
    collector: &str,
) -> Result<Vec<u8>, IngestError> {
    decode_content(headers, body).inspect_err(|_| {
        crate::metrics::REJECTED
            .with_label_values(&[collector, "encoding"])
            .inc()
    })
}

fn decode_content(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let enc = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => read_limited(flate2::read::MultiGzDecoder::new(body), "gzip"),
        "deflate" => read_limited(flate2::read::ZlibDecoder::new(body), "deflate"),
        "snappy" => snappy_raw(body),
        other => Err(IngestError::BadRequest(format!(
            "unsupported Content-Encoding {other:?}; use gzip, deflate or snappy"
        ))),
    }
}

/// Decodes a snappy *raw* block (as Prometheus remote write and Loki push send it).
pub fn snappy_raw(body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| IngestError::BadRequest(format!("body is not a snappy block: {e}")))?;
    if len > MAX_DECODED_BYTES {
        return Err(too_large(len));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::BadRequest(format!("body is not a snappy block: {e}")))
}

fn read_limited(r: impl Read, what: &str) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    r.take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("body is not valid {what}: {e}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(too_large(out.len()));
    }
    Ok(out)
}

fn too_large(n: usize) -> IngestError {
    IngestError::TooLarge(format!(
        "body decodes to {n} bytes or more; at most {MAX_DECODED_BYTES} are accepted"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(enc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", enc.parse().unwrap());
        h
    }

    #[test]
    fn decodes_each_encoding() {
        let text = b"hello hello hello".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        assert_eq!(
            decode_content(&headers("gzip"), &gz.finish().unwrap()).unwrap(),
            text
        );
        let sn = snap::raw::Encoder::new().compress_vec(&text).unwrap();
        assert_eq!(decode_content(&headers("snappy"), &sn).unwrap(), text);
        assert_eq!(decode_content(&HeaderMap::new(), &text).unwrap(), text);
        let e = decode_content(&headers("br"), &text).unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported Content-Encoding \"br\""),
            "{e}"
        );
        let e = decode_content(&headers("gzip"), b"nope").unwrap_err();
        assert!(e.to_string().contains("not valid gzip"), "{e}");
    }

    #[test]
    fn refuses_bombs() {
        let big = vec![0u8; MAX_DECODED_BYTES + 10];
        let sn = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        assert!(matches!(snappy_raw(&sn), Err(IngestError::TooLarge(_))));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&big).unwrap();
        let gz = gz.finish().unwrap();
        assert!(matches!(
            decode_content(&headers("gzip"), &gz),
            Err(IngestError::TooLarge(_))
        ));
    }
}
