//! Capability `groups`: WebSocket groups over the app's broker
//! (`services::broker`). A websocket instance joins and leaves groups with
//! its own connection; any instance broadcasts to the groups its manifest
//! grants (`groups`). A broadcast is queued on each member connection's
//! outbound queue and written by that connection's writer task: the
//! members' guests are not called. A connection leaves every group when
//! its instance goes.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::grants::Grants;
use crate::capabilities::bindings::groups::{self, GroupError, GroupMessage as WitGroupMessage};
use crate::services::broker::{Broker, BrokerError, GroupMessage, Member, MemberId};

/// The groups context of one instance.
#[derive(Default)]
pub struct GroupsCtx {
    broker: Option<Arc<dyn Broker>>,
    groups: Grants,
    /// A websocket instance's own connection.
    member: Option<Membership>,
}

/// A connection's place in the broker's groups; leaves them all when dropped.
struct Membership {
    id: MemberId,
    member: Arc<dyn Member>,
    broker: Arc<dyn Broker>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.broker.leave_all(self.id);
    }
}

impl GroupsCtx {
    /// An instance that may broadcast (an HTTP request).
    pub fn new(broker: Arc<dyn Broker>, groups: Grants) -> Self {
        GroupsCtx {
            broker: Some(broker),
            groups,
            member: None,
        }
    }

    /// A websocket instance: it may also join and leave with `member`.
    pub fn for_connection(broker: Arc<dyn Broker>, groups: Grants, member: Arc<dyn Member>) -> Self {
        let id = broker.member_id();
        GroupsCtx {
            member: Some(Membership {
                id,
                member,
                broker: broker.clone(),
            }),
            broker: Some(broker),
            groups,
        }
    }

    fn broker(&self, group: &str) -> Result<&Arc<dyn Broker>, GroupError> {
        let broker = self
            .broker
            .as_ref()
            .ok_or_else(|| GroupError::Invalid("groups are not available here".into()))?;
        if !self.groups.allows(group) {
            return Err(GroupError::Denied(format!(
                "group {group:?} is not granted to this handler (groups in waterspout.toml)"
            )));
        }
        Ok(broker)
    }
}

struct HasGroups;

impl HasData for HasGroups {
    type Data<'a> = &'a mut GroupsCtx;
}

/// Links interface `groups`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut GroupsCtx,
) -> wasmtime::Result<()> {
    groups::add_to_linker::<T, HasGroups>(linker, get)
}

fn from_broker(error: BrokerError) -> GroupError {
    match error {
        BrokerError::Invalid(m) | BrokerError::Unavailable(m) => GroupError::Invalid(m),
    }
}

impl groups::Host for GroupsCtx {
    async fn join(&mut self, group: String) -> wasmtime::Result<Result<(), GroupError>> {
        let broker = match self.broker(&group) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let Some(m) = &self.member else {
            return Ok(Err(GroupError::NotAConnection));
        };
        Ok(broker.join(&group, m.id, m.member.clone()).map_err(from_broker))
    }

    async fn leave(&mut self, group: String) -> wasmtime::Result<Result<(), GroupError>> {
        let broker = match self.broker(&group) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let Some(m) = &self.member else {
            return Ok(Err(GroupError::NotAConnection));
        };
        broker.leave(&group, m.id);
        Ok(Ok(()))
    }

    async fn broadcast(
        &mut self,
        group: String,
        message: WitGroupMessage,
    ) -> wasmtime::Result<Result<u32, GroupError>> {
        let broker = match self.broker(&group) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let message = match message {
            WitGroupMessage::Text(text) => GroupMessage::Text(text.into()),
            WitGroupMessage::Binary(bytes) => GroupMessage::Binary(bytes.into()),
        };
        Ok(broker.broadcast(&group, message).await.map_err(from_broker))
    }
}
