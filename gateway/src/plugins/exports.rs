//! The current contract's exports, type-checked once per component.
//!
//! The generated bindings look up and type-check every export on every
//! instantiation. With a fresh instance per call that is five type checks
//! (the `message` record's included) to make one call. Here an instance is
//! just the instance; `deliver`, the call made thousands of times a second,
//! is looked up by its index alone once the component's types have been
//! checked, and the rare calls go through the bindings as before.

use super::bindings::{self, current::types as wit};
use super::sandbox::CallState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{ComponentExportIndex, InstancePre, TypedFunc};

type Store<'a> = &'a mut wasmtime::Store<CallState>;

/// A 0.4 connector, linked and ready to instantiate.
pub struct CurrentPre {
    pre: bindings::ConnectorPre<CallState>,
    exports: Arc<Exports>,
}

struct Exports {
    indices: bindings::ConnectorIndices,
    deliver: ComponentExportIndex,
    /// Set once the bindings have type-checked every export of one instance
    /// of this component: every later instance has the same types.
    checked: AtomicBool,
}

impl CurrentPre {
    pub fn new(pre: InstancePre<CallState>) -> wasmtime::Result<CurrentPre> {
        let deliver = pre
            .component()
            .get_export_index(None, "deliver")
            .ok_or_else(|| wasmtime::format_err!("no `deliver` export"))?;
        let pre = bindings::ConnectorPre::new(pre)?;
        let indices = bindings::ConnectorIndices::new(pre.instance_pre())?;
        Ok(CurrentPre {
            pre,
            exports: Arc::new(Exports {
                indices,
                deliver,
                checked: AtomicBool::new(false),
            }),
        })
    }

    pub async fn instantiate(&self, store: Store<'_>) -> wasmtime::Result<CurrentInstance> {
        let instance = self.pre.instance_pre().instantiate_async(store).await?;
        Ok(CurrentInstance {
            instance,
            exports: self.exports.clone(),
        })
    }
}

/// One instance of a 0.4 connector.
pub struct CurrentInstance {
    instance: wasmtime::component::Instance,
    exports: Arc<Exports>,
}

impl CurrentInstance {
    /// Every export through the bindings, type-checked.
    pub fn checked(&self, store: Store<'_>) -> wasmtime::Result<bindings::Connector> {
        let connector = self.exports.indices.load(store, &self.instance)?;
        self.exports.checked.store(true, Ordering::Release);
        Ok(connector)
    }

    pub async fn deliver(
        &self,
        store: Store<'_>,
        msg: &wit::Message,
    ) -> wasmtime::Result<Result<wit::Receipt, wit::Failure>> {
        if !self.exports.checked.load(Ordering::Acquire) {
            return self.checked(store)?.call_deliver(store, msg).await;
        }
        let func = self
            .instance
            .get_func(&mut *store, self.exports.deliver)
            .ok_or_else(|| wasmtime::format_err!("no `deliver` export"))?;
        // SAFETY: `checked` is set only after `indices.load` type-checked
        // `deliver` (as `TypedFunc<(&Message,), (Result<Receipt, Failure>,)>`)
        // on an instance of this same component, whose instances all share
        // its types.
        let deliver = unsafe {
            TypedFunc::<(&wit::Message,), (Result<wit::Receipt, wit::Failure>,)>::new_unchecked(
                func,
            )
        };
        Ok(deliver.call_async(store, (msg,)).await?.0)
    }
}
