//! Container image references: Docker Hub's implicit prefixes, the
//! repository of a reference, and the image patterns of allowlists.
//!
//! Engines and Kubernetes spell one image several ways (`nginx`,
//! `docker.io/library/nginx`, `index.docker.io/library/nginx:1.25`); every
//! comparison here is made on the [`normalize_image`] form, so an operator's
//! allowlist entry matches however the event spells the image.

/// Docker Hub's implicit prefixes, longest first.
const DOCKER_HUB_PREFIXES: [&str; 4] = [
    "docker.io/library/",
    "index.docker.io/library/",
    "docker.io/",
    "index.docker.io/",
];

/// The reference without surrounding white space and without Docker Hub's
/// implicit prefix, so that `nginx` and `docker.io/library/nginx` compare
/// equal (one prefix is removed, once).
#[must_use]
pub fn normalize_image(image: &str) -> &str {
    let image = image.trim();
    DOCKER_HUB_PREFIXES
        .iter()
        .find_map(|prefix| image.strip_prefix(prefix))
        .unwrap_or(image)
}

/// The reference's repository: normalised, without its tag or digest
/// (`registry:5000/app:1.2` → `registry:5000/app`), so that every tag of an
/// application shares what is keyed by it.
#[must_use]
pub fn repository(image: &str) -> &str {
    let image = normalize_image(image);
    let image = image.split_once('@').map_or(image, |(repo, _)| repo);
    match image.rfind(':') {
        // A colon after the last slash starts the tag; before it, a registry port.
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// One image entry of an allowlist (or of a list of trusted images):
///
/// - `repo/name:tag` or `repo/name@sha256:…`: exactly that reference;
/// - `repo/name`: that repository with any tag or digest (never
///   `repo/name-other`);
/// - ending in `/` or `*`: every reference starting with what precedes the
///   `*` (`registry.k8s.io/`, `quay.io/calico/*`).
///
/// Docker Hub's implicit `docker.io/library/` is ignored on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagePattern {
    /// A reference or a repository, normalised.
    Exact(String),
    /// A prefix, normalised (without the `*`).
    Prefix(String),
}

impl ImagePattern {
    /// The pattern of an entry as the operator wrote it. Entries are never
    /// refused here: check for empty ones first (an empty entry, or a bare
    /// `*`, would match every image).
    #[must_use]
    pub fn new(entry: &str) -> Self {
        let entry = normalize_image(entry);
        if let Some(prefix) = entry.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if entry.ends_with('/') {
            Self::Prefix(entry.to_owned())
        } else {
            Self::Exact(entry.to_owned())
        }
    }

    /// Whether `image`, already passed through [`normalize_image`], is
    /// selected by this pattern. (Not normalised again here: removing a
    /// prefix twice could turn one reference into another.)
    #[must_use]
    pub fn matches(&self, image: &str) -> bool {
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

#[cfg(test)]
mod tests;
