//! The baseline in the plugin's key-value state: one key per scope, loaded
//! once, written when changed.

use vigil_plugin_sdk::host::{log, state};

use crate::baseline::ScopeStats;
use crate::{ContainerChurn, KEY_PREFIX, MAX_KEY_VALUE, Scope, ScopeKind, Stream};

impl ContainerChurn {
    /// Loads the persisted baseline once.
    pub(crate) fn ensure_loaded(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let mut dropped = 0usize;
        for key in state::keys(KEY_PREFIX) {
            match state::get(&key).and_then(|bytes| parse_scope(&key, &bytes)) {
                Some(scope) => {
                    self.scopes.insert(key, scope);
                }
                None => {
                    dropped += 1;
                    state::delete(&key);
                }
            }
        }
        while self.scopes.len() > self.config.max_scopes {
            let before = self.scopes.len();
            self.make_room();
            if self.scopes.len() == before {
                break;
            }
        }
        if dropped > 0 {
            log::warn(
                "unreadable churn baselines dropped",
                &[("scopes", &dropped.to_string())],
            );
        }
    }

    /// Writes every changed scope to state.
    pub(crate) fn persist(&mut self) {
        self.counted = 0;
        let mut failed = None;
        for (key, scope) in &mut self.scopes {
            if !scope.dirty {
                continue;
            }
            scope.dirty = false;
            if let Err(error) = state::set(key, &scope.stats.encode()) {
                failed = Some(format!("{error:?}"));
            }
        }
        if let Some(error) = failed
            && !self.warned_state
        {
            self.warned_state = true;
            log::warn(
                "churn baselines could not all be persisted; they are kept in memory (lower max_scopes?)",
                &[("error", &error)],
            );
        }
    }
}

/// `s/d/image/nginx` (the value cut to fit the host's key limit).
pub(crate) fn scope_key(stream: Stream, kind: ScopeKind, value: &str) -> String {
    let mut end = value.len().min(MAX_KEY_VALUE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    // Pushed, not `format!`ed: a key is made for every scope of every
    // counted event, and the formatting machinery cost several times this.
    let (value, word) = (&value[..end], kind.word());
    let mut key = String::with_capacity(KEY_PREFIX.len() + 3 + word.len() + value.len());
    key.push_str(KEY_PREFIX);
    key.push(stream.letter());
    key.push('/');
    key.push_str(word);
    key.push('/');
    key.push_str(value);
    key
}

/// A persisted scope from its key and value.
fn parse_scope(key: &str, bytes: &[u8]) -> Option<Scope> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (stream, rest) = rest.split_once('/')?;
    let (kind, _value) = rest.split_once('/')?;
    let stream = match stream {
        "d" => Stream::Docker,
        "k" => Stream::Kubernetes,
        "w" => Stream::Swarm,
        _ => return None,
    };
    Some(Scope {
        stream,
        kind: ScopeKind::parse(kind)?,
        stats: ScopeStats::decode(bytes)?,
        dirty: false,
    })
}
