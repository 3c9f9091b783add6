//! The handler world's exports, as a component has them: `request-handler`
//! always, `dispatch` (one export call per request) only in components built
//! since it was added to the WIT. Components already in users' version
//! stores lack it and keep working: the http driver makes the four calls
//! for them. (The world-level `HandlerPre` that `bindgen!` generates would
//! refuse such a component, so the two interfaces are looked up one by one.)

use std::sync::{Arc, OnceLock};

use wasmtime::component::{Instance, InstancePre, Resource};

use crate::capabilities::bindings::{HttpError, RequestHandler, WitMethod, dispatch};
use crate::capabilities::request::RequestData;
use crate::runtime::HostState;

/// `dispatch`'s name among a component's exports.
pub(super) const DISPATCH_EXPORT: &str = "waterspout:handler/dispatch@0.1.0";

/// A handler-world component, compiled and linked, ready to instantiate.
#[derive(Clone)]
pub struct HandlerPre {
    pre: InstancePre<HostState>,
    handler: Arc<crate::capabilities::bindings::RequestHandlerIndices>,
    dispatch: Option<dispatch::GuestIndices>,
}

impl HandlerPre {
    /// Finds the exports in `pre`'s component: `request-handler` must be
    /// there, `dispatch` may be.
    pub fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let handler = Arc::new(crate::capabilities::bindings::RequestHandlerIndices::new(&pre)?);
        let dispatch = if pre.component().get_export_index(None, DISPATCH_EXPORT).is_some() {
            Some(dispatch::GuestIndices::new(&pre)?)
        } else {
            None
        };
        Ok(HandlerPre {
            pre,
            handler,
            dispatch,
        })
    }

    /// Whether the component exports `dispatch` (one call per request).
    pub fn dispatches(&self) -> bool {
        self.dispatch.is_some()
    }

    /// The engine the component was compiled for.
    pub fn engine(&self) -> &wasmtime::Engine {
        self.pre.engine()
    }

    /// A new instance in `store`. Only `dispatch` is looked up (and
    /// type-checked) now; `request-handler`'s eleven functions are looked
    /// up when a request first needs them (the four calls, the error path):
    /// most requests of a dispatching component never do.
    pub async fn instantiate_async(
        &self,
        store: &mut wasmtime::Store<HostState>,
    ) -> wasmtime::Result<HandlerInstance> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        let dispatch = match &self.dispatch {
            Some(indices) => Some(indices.load(&mut *store, &instance)?),
            None => None,
        };
        Ok(HandlerInstance {
            instance,
            indices: self.handler.clone(),
            handler: OnceLock::new(),
            dispatch,
        })
    }
}

/// A live handler-world instance's exports.
pub struct HandlerInstance {
    instance: Instance,
    indices: Arc<crate::capabilities::bindings::RequestHandlerIndices>,
    /// `request-handler`, once looked up.
    handler: OnceLock<RequestHandler>,
    dispatch: Option<dispatch::Guest>,
}

impl HandlerInstance {
    /// The four-call interface (`initialize`, `prepare`, the verbs,
    /// `write-error`, `on-finish`), looked up in `store` on first use.
    pub fn handler<'a>(
        &'a self,
        store: &mut wasmtime::Store<HostState>,
    ) -> wasmtime::Result<&'a RequestHandler> {
        if let Some(handler) = self.handler.get() {
            return Ok(handler);
        }
        let handler = self.indices.load(store, &self.instance)?;
        Ok(self.handler.get_or_init(|| handler))
    }

    /// `dispatch.handle`, when the component exports it: `Ok(None)` when it
    /// does not (the caller makes the four calls).
    #[allow(clippy::too_many_arguments)]
    pub async fn dispatch(
        &self,
        store: &mut wasmtime::Store<HostState>,
        req: Resource<RequestData>,
        settings: &[(String, String)],
        method: WitMethod,
        path_args: &[String],
        path_kwargs: &[(String, String)],
    ) -> wasmtime::Result<Option<Result<(), HttpError>>> {
        let Some(dispatch) = &self.dispatch else {
            return Ok(None);
        };
        dispatch
            .call_handle(store, req, settings, method, path_args, path_kwargs)
            .await
            .map(Some)
    }

    pub fn dispatches(&self) -> bool {
        self.dispatch.is_some()
    }
}
