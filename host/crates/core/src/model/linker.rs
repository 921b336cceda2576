//! The linker glue that wasmtime's `bindgen!` expects of the WIT `types`
//! interface once `with` maps that interface onto [`crate::model`].
//!
//! `types` declares no functions, so there is nothing to implement; the
//! component still imports it as an (empty) instance, defined here.

use wasmtime::component::{HasData, Linker};

/// Host functions of the `types` interface: there are none.
pub trait Host {}

impl<H: Host + ?Sized> Host for &mut H {}

/// Store-aware host functions of the `types` interface: there are none.
pub trait HostWithStore<T>: HasData {}

impl<H: ?Sized + HasData, T> HostWithStore<T> for H {}

/// Defines the empty `vigil:detector/types` instance in `linker`.
pub fn add_to_linker<T, D>(
    linker: &mut Linker<T>,
    _host_getter: fn(&mut T) -> D::Data<'_>,
) -> wasmtime::Result<()>
where
    D: HostWithStore<T>,
    for<'a> D::Data<'a>: Host,
    T: 'static,
{
    linker.instance(crate::WIT_TYPES_INTERFACE)?;
    Ok(())
}
