//! Compiles components once and caches the native code on disk, keyed by
//! the component's content digest and the engine's compatibility hash, so a
//! restart does not recompile a 17 MiB Python component.
//!
//! Loading a cached artifact is `unsafe` in wasmtime because the file is
//! trusted to be wasmtime's own output: whoever can write the cache can run
//! native code in Vigil. The cache directory is therefore created `0700` and
//! refused when another user owns it or can write to it.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::LoadError;

/// Where a component's native code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled now (and written to the cache if there is one).
    Compiled,
    /// Loaded from the on-disk cache.
    Cache,
}

/// How a component was obtained and how long it took.
#[derive(Clone, Copy, Debug)]
pub struct CompileStats {
    pub source: CompileSource,
    pub duration: Duration,
}

/// The on-disk cache of compiled components.
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// Opens (creating if needed) a cache directory that only we can write.
    pub fn open(dir: &Path) -> Result<Self, LoadError> {
        let err = |reason: String| LoadError::Cache {
            dir: dir.to_owned(),
            reason,
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(vigil_core::fsperm::DIR_MODE)
                .create(dir)
                .map_err(|e| err(e.to_string()))?;
        }
        let meta = fs::metadata(dir).map_err(|e| err(e.to_string()))?;
        let me = vigil_core::fsperm::effective_uid();
        if meta.uid() != me {
            return Err(err(format!("owned by uid {} rather than {me}", meta.uid())));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(err(format!(
                "writable by group or others (mode {:o})",
                meta.permissions().mode() & 0o777
            )));
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path_for(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{digest}-{:016x}.cwasm", h.finish()))
    }
}

/// The SHA-256 of a component's bytes, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    vigil_core::text::hex(&d)
}

/// Compiles `bytes`, or loads the cached native code for them.
pub fn compile(
    engine: &Engine,
    cache: Option<&ComponentCache>,
    name: &str,
    bytes: &[u8],
    digest: &str,
) -> Result<(Component, CompileStats), LoadError> {
    let started = Instant::now();
    if let Some(cache) = cache {
        let path = cache.path_for(engine, digest);
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of this
            // engine configuration (the compatibility hash is in its name),
            // in a directory that `ComponentCache::open` checked only we can
            // write; wasmtime also re-checks its header and version.
            #[expect(
                unsafe_code,
                reason = "loading our own precompiled artifact from a private cache"
            )]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            match loaded {
                Ok(c) => {
                    return Ok((
                        c,
                        CompileStats {
                            source: CompileSource::Cache,
                            duration: started.elapsed(),
                        },
                    ));
                }
                Err(e) => {
                    tracing::warn!(plugin = name, path = %path.display(), error = %e, "cached plugin artifact unusable; recompiling");
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile {
        plugin: name.to_owned(),
        reason: crate::runner::error_reason(&e),
    })?;
    if let Some(cache) = cache {
        let path = cache.path_for(engine, digest);
        if let Err(e) = write_atomic(&path, &component) {
            tracing::warn!(plugin = name, path = %path.display(), error = %e, "cannot write plugin cache; the next start will recompile");
        }
    }
    Ok((
        component,
        CompileStats {
            source: CompileSource::Compiled,
            duration: started.elapsed(),
        },
    ))
}

fn write_atomic(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = vigil_core::fsperm::create_private(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
