//! Files (beta) in the mock: an uploaded file, its metadata object, and the beta header the
//! Files API requires.
//!
//! The gateway relays the Files API, and its tests upload through the official SDK, so uploads
//! are read as the real API reads them (a `multipart/form-data` body with a `file` part, see
//! [`super::multipart`]) and every request must carry `anthropic-beta: files-api-2025-04-14`,
//! which lets a test see that the gateway forwards that header. A file's bytes are kept as a
//! slice of the request's body: an upload is not copied.

use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{json, Value};

use super::batches::rfc3339;
use super::{multipart, Owner};
use crate::http::ApiError;
use crate::mock::anthropic;

/// The beta the Files API requires.
pub const FILES_BETA: &str = "files-api-2025-04-14";
/// A part's type when the upload gives none.
pub const DEFAULT_MIME: &str = "application/octet-stream";

/// A stored file.
#[derive(Clone, Debug)]
pub struct StoredFile {
    pub id: String,
    pub owner: Owner,
    pub filename: String,
    pub mime_type: String,
    pub created: SystemTime,
    pub data: Bytes,
}

impl StoredFile {
    /// The file's metadata object, as the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.data.len(),
            "created_at": rfc3339(self.created),
            "downloadable": true,
        })
    }
}

/// Whether the `anthropic-beta` header values (each a comma-separated list; a request may send
/// several) include the Files API's beta.
pub fn has_beta<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    values.into_iter().any(|v| {
        v.split(|b| *b == b',')
            .any(|beta| beta.trim_ascii() == FILES_BETA.as_bytes())
    })
}

/// The 400 for a Files request without the beta.
pub fn beta_required() -> ApiError {
    ApiError::invalid_request(
        format!(
            "the Files API is in beta: send the header 'anthropic-beta: {FILES_BETA}' to use it"
        )
        .into(),
    )
}

/// The file an upload (`POST /v1/files`, a request with `content_type` and `body`) carries,
/// stored by `owner` at `now`.
pub fn upload(
    owner: Owner,
    content_type: Option<&[u8]>,
    body: &Bytes,
    now: SystemTime,
) -> Result<StoredFile, ApiError> {
    let part = multipart::find(content_type, body, "file")?;
    let filename = part
        .filename
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::invalid_request("file: the part has no filename".into()))?;
    if filename.chars().count() > 500 {
        return Err(ApiError::invalid_request(
            "file: a filename has at most 500 characters".into(),
        ));
    }
    let mime_type = part
        .content_type
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_MIME.to_string());
    Ok(StoredFile {
        id: format!("file_{}", anthropic::random_suffix(24)),
        owner,
        filename,
        mime_type,
        created: now,
        data: body.slice(part.data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beta_is_found_in_any_list() {
        assert!(has_beta([&b"files-api-2025-04-14"[..]]));
        assert!(has_beta([&b"x"[..], b"a-1, files-api-2025-04-14 ,b"]));
        assert!(!has_beta([&b"files-api-2025-04-15"[..]]));
        assert!(!has_beta(std::iter::empty()));
        assert!(beta_required().message.contains(FILES_BETA));
    }

    #[test]
    fn an_upload_keeps_its_bytes_name_and_type() {
        let body = Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.pdf\"\r\n\
              Content-Type: application/pdf\r\n\r\n%PDF\x00\xff\r\n--b--\r\n",
        );
        let now = SystemTime::UNIX_EPOCH;
        let f = upload(
            Owner::of(None),
            Some(b"multipart/form-data; boundary=b"),
            &body,
            now,
        )
        .unwrap();
        assert!(f.id.starts_with("file_") && f.id.len() == 5 + 24);
        assert_eq!(&f.data[..], b"%PDF\x00\xff");
        let v = f.to_json();
        assert_eq!(v["type"], "file");
        assert_eq!(v["filename"], "n.pdf");
        assert_eq!(v["mime_type"], "application/pdf");
        assert_eq!(v["size_bytes"], 6);
        assert_eq!(v["created_at"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["downloadable"], true);

        let untyped = Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nx\r\n--b--",
        );
        let f = upload(
            Owner::of(None),
            Some(b"multipart/form-data; boundary=b"),
            &untyped,
            now,
        )
        .unwrap();
        assert_eq!(f.mime_type, DEFAULT_MIME);
        let nameless = Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--",
        );
        let e = upload(
            Owner::of(None),
            Some(b"multipart/form-data; boundary=b"),
            &nameless,
            now,
        )
        .unwrap_err();
        assert!(e.message.contains("filename"), "{}", e.message);
    }
}
