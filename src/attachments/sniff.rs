//! What a file is, from its content: the type a client claims is ignored.

/// The media type `bytes` show: a known signature (PNG, JPEG, PDF, …), or
/// `text/plain` for UTF-8 text without control characters; `None` when
/// neither fits.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if let Some(kind) = infer::get(bytes) {
        return Some(kind.mime_type());
    }
    looks_like_text(bytes).then_some("text/plain")
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let sample = text.trim_start();
    // Markup a browser would render is not plain text.
    let lower: String = sample
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with('<')
        && (lower.contains("html")
            || lower.contains("svg")
            || lower.contains("script")
            || lower.starts_with("<?xml"))
    {
        return false;
    }
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A file name safe to store and to send back in `Content-Disposition`: the
/// last path component, without control characters, at most 255
/// characters; `attachment` when nothing is left.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return "attachment".into();
    }
    cleaned.chars().take(255).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(sniff(PNG), Some("image/png"));
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
            Some("application/pdf")
        );
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0"), Some("image/jpeg"));
        assert_eq!(
            sniff(b"The laptop will not boot.\nError 0x7B\n"),
            Some("text/plain")
        );
        assert_eq!(sniff("Grüße\tüber UTF-8".as_bytes()), Some("text/plain"));
    }

    #[test]
    fn markup_binaries_and_executables_are_not_text() {
        assert_ne!(
            sniff(b"<html><script>alert(1)</script></html>"),
            Some("text/plain")
        );
        assert_ne!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"),
            Some("text/plain")
        );
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0"),
            Some("application/vnd.microsoft.portable-executable")
        );
        assert_eq!(sniff(b"\0\x01\x02binary"), None);
        assert_eq!(sniff(&[0xff, 0xfe, 0x00]), None);
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\shot.png"), "shot.png");
        assert_eq!(clean_filename("a\r\nb\".txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "attachment");
        assert_eq!(clean_filename(""), "attachment");
        assert_eq!(clean_filename(&"x".repeat(300)).len(), 255);
    }
}
