//! A node in a cluster: joining (catch up before serving), recording this
//! node's changes in the deploy log, following the log, and applying the
//! cluster's active set (see [`super::cluster`] for the keys and the order).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::{ActiveEntry, Change, Cluster, ClusterError, ClusterLink, ClusterStatus};
use super::{Deployer, Source, SwapError, blocking};
use crate::runtime::HandlerVersion;

/// How long a node tries to reach Redis at start before giving up.
const JOIN_PATIENCE: Duration = Duration::from_secs(10);

impl Deployer {
    /// Joins the cluster `link` names: reads the active set recorded there
    /// and applies it (or, for the first node, records this node's), then
    /// follows the deploy log in the background. Call before serving: a
    /// node never serves a set the cluster has moved past. Retries a Redis
    /// that does not answer for a few seconds, then fails.
    pub async fn join_cluster(self: &Arc<Self>, link: ClusterLink) -> Result<(), SwapError> {
        let started = std::time::Instant::now();
        let cluster = loop {
            match Cluster::connect(&link).await {
                Ok(c) => break Arc::new(c),
                Err(e) if started.elapsed() < JOIN_PATIENCE => {
                    tracing::warn!("{e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let snapshot = cluster.snapshot().await?;
        if snapshot.seq == 0 {
            let (handlers, routes) = self.local_set();
            for (name, entry) in &handlers {
                self.ensure_bytes(&cluster, name, &entry.sha256, entry.version, None)
                    .await?;
            }
            if cluster.seed(&handlers, routes.as_deref()).await? {
                tracing::info!(
                    node = cluster.node(),
                    "cluster: the first node; its active set is deploy 1"
                );
                cluster.mark_applied(1).await?;
            } else {
                self.apply_cluster_set(&cluster).await?;
            }
        } else {
            tracing::info!(
                node = cluster.node(),
                deploy = snapshot.seq,
                "cluster: catching up with the active set before serving"
            );
            self.apply_cluster_set(&cluster).await?;
        }
        cluster.heartbeat().await?;
        let _ = self.cluster.set(cluster.clone());
        tokio::spawn(follow(self.clone(), cluster.clone()));
        tokio::spawn(heartbeat(cluster));
        Ok(())
    }

    /// Where the newest deploy has reached, in a cluster; with `wait`, after
    /// waiting (at most that long) until every live node has applied it.
    pub async fn cluster_status(
        &self,
        wait: Option<Duration>,
    ) -> Option<Result<ClusterStatus, ClusterError>> {
        let cluster = self.cluster.get()?;
        Some(match wait {
            Some(wait) => cluster.wait_all(wait).await,
            None => cluster.status().await,
        })
    }

    /// This node's active set, as the cluster records it.
    fn local_set(&self) -> (BTreeMap<String, ActiveEntry>, Option<Vec<super::RouteDoc>>) {
        let handlers = self
            .registry
            .names()
            .into_iter()
            .filter_map(|name| {
                let active = self.registry.get(&name)?.active();
                Some((
                    name,
                    ActiveEntry {
                        sha256: active.sha256.clone(),
                        version: active.version,
                    },
                ))
            })
            .collect();
        (handlers, self.versions.state().routes)
    }

    /// Puts a version's bytes in Redis unless they are there already.
    async fn ensure_bytes(
        self: &Arc<Self>,
        cluster: &Cluster,
        handler: &str,
        sha256: &str,
        version: u64,
        bytes: Option<&Arc<Vec<u8>>>,
    ) -> Result<(), SwapError> {
        if cluster.has_bytes(handler, sha256).await? {
            return Ok(());
        }
        let bytes = match bytes {
            Some(b) => b.clone(),
            None => {
                let (app, name) = (self.clone(), handler.to_owned());
                Arc::new(blocking(move || app.versions.read_version(&name, version)).await??)
            }
        };
        cluster.put_bytes(handler, sha256, &bytes).await?;
        Ok(())
    }

    /// In a cluster, records a change there (the commit point) before this
    /// node applies it; returns its deploy id. Outside one, does nothing.
    pub(super) async fn publish(&self, change: Change<'_>) -> Result<Option<u64>, SwapError> {
        let Some(cluster) = self.cluster.get() else {
            return Ok(None);
        };
        Ok(Some(cluster.publish(change).await?))
    }

    /// [`Deployer::publish`] of "`handler` runs `sha256`", its bytes put in
    /// Redis first (from `bytes`, else read from the store).
    pub(super) async fn publish_activate(
        self: &Arc<Self>,
        handler: &str,
        sha256: &str,
        version: u64,
        bytes: Option<&Arc<Vec<u8>>>,
    ) -> Result<Option<u64>, SwapError> {
        let Some(cluster) = self.cluster.get().cloned() else {
            return Ok(None);
        };
        self.ensure_bytes(&cluster, handler, sha256, version, bytes)
            .await?;
        self.publish(Change::Activate {
            handler,
            entry: ActiveEntry {
                sha256: sha256.to_owned(),
                version,
            },
        })
        .await
    }

    /// After this node applied its own change `id`: if it was the next one,
    /// the node is up to date; if other nodes' changes came between, the
    /// follower applies the whole set. Called with the ops lock held.
    pub(super) async fn note_published(&self, id: Option<u64>) {
        let (Some(cluster), Some(id)) = (self.cluster.get(), id) else {
            return;
        };
        if cluster.applied() + 1 == id {
            if let Err(e) = cluster.mark_applied(id).await {
                tracing::warn!("{e}");
            }
        } else {
            cluster.wake.notify_one();
        }
    }

    /// Makes this node serve the cluster's newest active set: every handler
    /// on its recorded version (from the local store when it has the bytes,
    /// else fetched from Redis, validated and compiled), the route table,
    /// handlers deleted in the cluster removed; then records the deploy id
    /// as applied. The set is read with the ops lock held, so a change this
    /// node records meanwhile is in it.
    async fn apply_cluster_set(self: &Arc<Self>, cluster: &Cluster) -> Result<(), SwapError> {
        let _ops = self.control.ops.lock().await;
        let snapshot = cluster.snapshot().await?;
        if snapshot.seq <= cluster.applied() {
            return Ok(());
        }
        for (name, entry) in &snapshot.handlers {
            if self
                .registry
                .get(name)
                .is_some_and(|slot| slot.active().sha256 == entry.sha256)
            {
                continue;
            }
            let stored = self
                .versions
                .versions(name)
                .into_iter()
                .rev()
                .find(|m| m.sha256 == entry.sha256);
            let version = match stored {
                Some(meta) => self.load_version(&meta).await?,
                None => {
                    let bytes = Arc::new(cluster.fetch_bytes(name, &entry.sha256).await?);
                    let (world, prepared, _) = self.compile(name, bytes.clone()).await?;
                    let meta = {
                        let (app, bytes, name, sha, number) = (
                            self.clone(),
                            bytes.clone(),
                            name.clone(),
                            entry.sha256.clone(),
                            entry.version,
                        );
                        blocking(move || {
                            app.versions.record_version_as(
                                &name,
                                &bytes,
                                &sha,
                                world,
                                Source::Cluster,
                                Some(number),
                            )
                        })
                        .await??
                    };
                    let mut version = HandlerVersion::new(
                        name,
                        meta.version,
                        entry.sha256.clone(),
                        bytes.len(),
                        world,
                        prepared,
                    );
                    version.uploaded_at = meta.uploaded_at_time();
                    Arc::new(version)
                }
            };
            self.activate_locked(version, false).await?;
        }
        if let Some(docs) = snapshot.routes
            && self.versions.state().routes.as_ref() != Some(&docs)
        {
            self.replace_routes_locked(docs).await?;
        }
        for name in self.registry.names() {
            let gone = !snapshot.handlers.contains_key(&name)
                && self.manifest.handler(&name).is_none()
                && self.routes_of(&name).is_empty();
            if gone {
                self.delete_handler_locked(&name).await?;
            }
        }
        cluster.mark_applied(snapshot.seq).await?;
        tracing::info!(
            node = cluster.node(),
            deploy = snapshot.seq,
            "cluster: applied the active set"
        );
        Ok(())
    }
}

/// Follows the deploy log for the life of the process: whenever it grows,
/// or at least every second, a deploy id newer than the applied one means
/// applying the cluster's set. Redis errors are logged once per outage and
/// retried; an apply that fails is logged once per deploy id and retried
/// every few seconds.
async fn follow(deployer: Arc<Deployer>, cluster: Arc<Cluster>) {
    let mut conn = None;
    let mut last: Option<String> = None;
    let mut outage = false;
    let mut failed: Option<u64> = None;
    loop {
        let waited = async {
            if conn.is_none() {
                conn = Some(cluster.follow_connection().await?);
            }
            if last.is_none() {
                last = Some(cluster.log_end().await?);
            }
            let (Some(c), Some(l)) = (conn.as_mut(), last.as_deref()) else {
                unreachable!("set above");
            };
            last = Some(cluster.wait_log(c, l).await?);
            Ok::<_, ClusterError>(())
        };
        let (result, woken) = tokio::select! {
            r = waited => (r, false),
            _ = cluster.wake.notified() => (Ok(()), true),
        };
        if woken {
            // The blocked XREAD is abandoned with its connection.
            conn = None;
        }
        let behind = async {
            result?;
            let seq = cluster.seq().await?;
            Ok::<_, ClusterError>((seq > cluster.applied()).then_some(seq))
        };
        match behind.await {
            Ok(None) => outage = false,
            Ok(Some(seq)) => {
                outage = false;
                match deployer.apply_cluster_set(&cluster).await {
                    Ok(()) => failed = None,
                    Err(e) => {
                        if failed != Some(seq) {
                            tracing::error!(
                                node = cluster.node(),
                                deploy = seq,
                                "cluster: cannot apply the active set: {}; retrying",
                                crate::text::report(&e)
                            );
                            failed = Some(seq);
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
            Err(e) => {
                if !outage {
                    tracing::error!(
                        node = cluster.node(),
                        "{e}; deploys from other nodes wait until it is back"
                    );
                    outage = true;
                }
                conn = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Says the node is alive every second and updates the cluster gauges.
async fn heartbeat(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(Cluster::heartbeat_every());
    loop {
        tick.tick().await;
        if cluster.heartbeat().await.is_ok() {
            let _ = cluster.status().await;
        }
    }
}
