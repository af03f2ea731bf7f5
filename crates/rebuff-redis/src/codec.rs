//! The bytes of a stored response: status, headers, body, each length-prefixed (big endian).
//!
//! ```text
//! status: u16 | header count: u32 | (name length: u32, name, value length: u32, value)* | body
//! ```

use bytes::Bytes;
use rebuff_store::StoredResponse;

/// Appends `response` to `out`.
pub(crate) fn encode(response: &StoredResponse, out: &mut Vec<u8>) {
    out.extend_from_slice(&response.status.to_be_bytes());
    out.extend_from_slice(&len(response.headers.len()).to_be_bytes());
    for (name, value) in &response.headers {
        for part in [name, value] {
            out.extend_from_slice(&len(part.len()).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(&response.body);
}

fn len(n: usize) -> u32 {
    // Headers are far shorter than 4 GiB; saturating keeps the encoding total.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The response encoded in `bytes`; `None` when they are not an encoding (a damaged or foreign
/// record).
pub(crate) fn decode(bytes: &[u8]) -> Option<StoredResponse> {
    let mut rest = bytes;
    let status = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
    let count = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?);
    let mut headers = Vec::new();
    for _ in 0..count {
        let mut pair = [String::new(), String::new()];
        for part in &mut pair {
            let n = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?);
            *part = String::from_utf8(take(&mut rest, usize::try_from(n).ok()?)?.to_vec()).ok()?;
        }
        let [name, value] = pair;
        headers.push((name, value));
    }
    Some(StoredResponse { status, headers, body: Bytes::copy_from_slice(rest) })
}

/// The first `n` bytes of `rest`, which moves past them.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let res = StoredResponse {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("location".into(), "/v1/things/1".into()),
            ],
            body: Bytes::from_static(b"{\"id\":1}\0\xff"),
        };
        let mut bytes = Vec::new();
        encode(&res, &mut bytes);
        assert_eq!(decode(&bytes), Some(res));
        let empty = StoredResponse { status: 204, headers: Vec::new(), body: Bytes::new() };
        bytes.clear();
        encode(&empty, &mut bytes);
        assert_eq!(decode(&bytes), Some(empty));
    }

    #[test]
    fn truncated_or_foreign_bytes_do_not_decode() {
        let res = StoredResponse {
            status: 200,
            headers: vec![("etag".into(), "\"x\"".into())],
            body: Bytes::new(),
        };
        let mut bytes = Vec::new();
        encode(&res, &mut bytes);
        for cut in 0..bytes.len() - 1 {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(&[0, 200, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
