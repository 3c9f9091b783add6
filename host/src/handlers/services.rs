//! What every driver gives a new instance from the app's services: each
//! service capability gets its backend and the handler's grants.

use std::sync::Arc;

use crate::app::App;
use crate::capabilities::Ctx;
use crate::capabilities::grants::Grants;
use crate::capabilities::groups::GroupsCtx;
use crate::capabilities::http_client::HttpClientCtx;
use crate::capabilities::kv::KvCtx;
use crate::capabilities::pubsub::PubsubCtx;
use crate::manifest::HandlerLimits;
use crate::services::broker::Member;

/// Grants `ctx` the services under `limits`; `member` is a websocket
/// instance's own connection (for `groups.join`).
pub(super) fn grant(app: &App, limits: &HandlerLimits, ctx: &mut Ctx, member: Option<Arc<dyn Member>>) {
    let broker = app.services().broker.clone();
    ctx.kv = KvCtx::new(app.services().kv.clone(), &limits.kv);
    ctx.http_client = HttpClientCtx::new(app.services().http_client.clone(), &limits.allowed_outbound_hosts);
    ctx.pubsub = PubsubCtx::new(broker.clone(), Grants::new(&limits.pubsub_topics));
    let groups = Grants::new(&limits.groups);
    ctx.groups = match member {
        Some(member) => GroupsCtx::for_connection(broker, groups, member),
        None => GroupsCtx::new(broker, groups),
    };
}
