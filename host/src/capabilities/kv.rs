//! Capability `kv` (WIT interface `kv`): the app's kv backend
//! (`services::Kv`), limited to the namespaces the handler's manifest
//! section grants (`kv = ["chat"]`). The empty namespace is the handler's
//! first. A namespace not granted, or no backend, is the guest's `denied`
//! error, never a trap.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::kv::{self, KvError};
use crate::services::kv::{Kv, KvError as BackendError};

/// The kv context of one instance: the backend and the handler's grants.
#[derive(Clone, Default)]
pub struct KvCtx {
    backend: Option<Arc<dyn Kv>>,
    namespaces: Arc<[String]>,
}

impl KvCtx {
    pub fn new(backend: Arc<dyn Kv>, namespaces: &[String]) -> Self {
        KvCtx {
            backend: Some(backend),
            namespaces: namespaces.into(),
        }
    }

    /// The backend and the namespace `requested` names, if granted.
    fn grant(&self, requested: &str) -> Result<(Arc<dyn Kv>, String), KvError> {
        let backend = self
            .backend
            .clone()
            .ok_or_else(|| KvError::Denied("kv is not available to this kind of instance".into()))?;
        let ns = if requested.is_empty() {
            self.namespaces.first().ok_or_else(|| {
                KvError::Denied("this handler has no kv namespace (grant one: kv = [\"name\"] in its [handler.NAME] section)".into())
            })?
        } else {
            self.namespaces
                .iter()
                .find(|ns| *ns == requested)
                .ok_or_else(|| {
                    KvError::Denied(format!(
                        "kv namespace {requested:?} is not granted to this handler (granted: {:?})",
                        self.namespaces
                    ))
                })?
        };
        Ok((backend, ns.clone()))
    }
}

fn wit_error(e: BackendError) -> KvError {
    match e {
        BackendError::Invalid(m) => KvError::Invalid(m),
        BackendError::NotANumber(m) => KvError::NotANumber(m),
        BackendError::Backend(m) => {
            tracing::error!("kv backend: {m}");
            KvError::Backend(m)
        }
    }
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = &'a mut KvCtx;
}

/// Links interface `kv`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasKv>(linker, get)
}

type Answer<T> = wasmtime::Result<Result<T, KvError>>;

impl kv::Host for KvCtx {
    async fn get(&mut self, namespace: String, key: String) -> Answer<Option<Vec<u8>>> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv.get(&ns, &key).await.map_err(wit_error))
    }

    async fn set(
        &mut self,
        namespace: String,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Answer<()> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv.set(&ns, &key, value, ttl(ttl_ms)).await.map_err(wit_error))
    }

    async fn delete(&mut self, namespace: String, key: String) -> Answer<bool> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv.delete(&ns, &key).await.map_err(wit_error))
    }

    async fn increment(&mut self, namespace: String, key: String, delta: i64) -> Answer<i64> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv.increment(&ns, &key, delta).await.map_err(wit_error))
    }

    async fn compare_and_swap(
        &mut self,
        namespace: String,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Answer<bool> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv
            .compare_and_swap(&ns, &key, expected.as_deref(), value, ttl(ttl_ms))
            .await
            .map_err(wit_error))
    }

    async fn list_keys(
        &mut self,
        namespace: String,
        prefix: String,
        limit: Option<u32>,
    ) -> Answer<Vec<String>> {
        let (kv, ns) = match self.grant(&namespace) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv
            .list_keys(&ns, &prefix, limit.map(|l| l as usize))
            .await
            .map_err(wit_error))
    }
}
