//! Image references: Docker Hub's implicit prefixes, repositories, and
//! allowlist patterns.

/// Docker Hub's implicit prefixes, so `nginx` and `docker.io/library/nginx` compare equal.
pub(crate) fn normalize_image(image: &str) -> &str {
    let image = image.trim();
    [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ]
    .iter()
    .find_map(|prefix| image.strip_prefix(prefix))
    .unwrap_or(image)
}

/// An image reference without its tag or digest (`registry:5000/app:1.2` →
/// `registry:5000/app`): the image scope, so every tag shares one baseline.
pub(crate) fn repository(image: &str) -> &str {
    let image = normalize_image(image);
    let image = image.split_once('@').map_or(image, |(repo, _)| repo);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// One `allowlist.images` entry: `repo/name:tag` or `repo/name@digest`
/// exactly, `repo/name` with any tag or digest, or a prefix ending in `/` or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImagePattern {
    /// A reference or a repository.
    Exact(String),
    /// A prefix.
    Prefix(String),
}

impl ImagePattern {
    pub(crate) fn new(entry: &str) -> Self {
        let entry = normalize_image(entry);
        if let Some(prefix) = entry.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if entry.ends_with('/') {
            Self::Prefix(entry.to_owned())
        } else {
            Self::Exact(entry.to_owned())
        }
    }

    pub(crate) fn matches(&self, image: &str) -> bool {
        match self {
            Self::Prefix(prefix) => image.starts_with(prefix.as_str()),
            Self::Exact(entry) => {
                image == entry
                    || image
                        .strip_prefix(entry.as_str())
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            }
        }
    }
}
