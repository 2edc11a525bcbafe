//! Small binary payloads, base64-encoded, for image, audio and blob content.
//!
//! Generated for the fixture (not copied): the conformance suite only checks
//! that such items carry `data`/`blob` and the right `mimeType`.

/// A 1×1 RGBA PNG (one blue pixel).
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mPQqr/yHwAE0QJ94jqzegAAAABJRU5ErkJggg==";
pub const PNG_MIME: &str = "image/png";

/// A WAV file: 8 kHz mono 16-bit PCM, four samples of silence.
pub const WAV_BASE64: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQgAAAAAAAAAAAAAAA==";
/// The suite requires exactly this type for audio content.
pub const WAV_MIME: &str = "audio/wav";
