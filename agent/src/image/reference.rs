//! Image reference normalization (`busybox` → `docker.io/library/busybox:latest`).

use super::ImageError;
use oci_client::Reference;

/// Parses and normalizes an image reference.
pub fn normalize(image: &str) -> Result<Reference, ImageError> {
    image
        .parse::<Reference>()
        .map_err(|e| ImageError::BadReference(image.to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand() {
        assert_eq!(
            normalize("busybox").unwrap().whole(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("127.0.0.1:5000/x/y:1").unwrap().whole(),
            "127.0.0.1:5000/x/y:1"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(normalize("UPPER/Case::").is_err());
    }
}
