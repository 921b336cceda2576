//! One call per plugin, on a thread pool when there is one: the calls of a
//! batch run concurrently (each plugin has its own store, so they share
//! nothing but read-only threat intel and the replay clock, which does not
//! move during the batch), and the outcomes come back in plugin order.

use rayon::prelude::*;

use crate::PluginRunner;

/// `call(index, runner)` for every runner, concurrently on `pool` if given, one
/// after the other otherwise; the results in the runners' order.
pub(super) fn call_each<T: Send>(
    runners: &mut [PluginRunner],
    pool: Option<&rayon::ThreadPool>,
    call: impl Fn(usize, &mut PluginRunner) -> Option<T> + Sync + Send,
) -> Vec<Option<T>> {
    match pool {
        // One plugin per task: plugins differ too much in cost for rayon's
        // default split (halves of the list) to balance them.
        Some(pool) if runners.len() > 1 => pool.install(|| {
            runners
                .par_iter_mut()
                .enumerate()
                .with_max_len(1)
                .map(|(i, r)| call(i, r))
                .collect()
        }),
        _ => runners
            .iter_mut()
            .enumerate()
            .map(|(i, r)| call(i, r))
            .collect(),
    }
}
