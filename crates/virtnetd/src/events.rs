//! Network events the driver emits, as libvirt's network event API sees
//! them (`virConnectNetworkEventRegisterAny`).

use std::sync::Mutex;
use std::sync::mpsc::Sender;

use virtnet_conf::Uuid;

/// `virNetworkEventLifecycleType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `VIR_NETWORK_EVENT_DEFINED`.
    Defined = 0,
    /// `VIR_NETWORK_EVENT_UNDEFINED`.
    Undefined = 1,
    /// `VIR_NETWORK_EVENT_STARTED`.
    Started = 2,
    /// `VIR_NETWORK_EVENT_STOPPED`.
    Stopped = 3,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A lifecycle change (`VIR_NETWORK_EVENT_ID_LIFECYCLE`).
    Lifecycle(Lifecycle),
    /// Title, description or metadata changed
    /// (`VIR_NETWORK_EVENT_ID_METADATA_CHANGE`): the metadata type and, for
    /// custom metadata, its namespace URI.
    MetadataChange {
        /// `virNetworkMetadataType`.
        kind: i32,
        /// Namespace of custom metadata.
        nsuri: Option<String>,
    },
}

/// An event about one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEvent {
    /// Network name.
    pub name: String,
    /// Network UUID.
    pub uuid: Uuid,
    /// What happened.
    pub kind: EventKind,
}

/// Where the driver sends its events; the RPC server fans them out to the
/// clients that registered for them.
#[derive(Default)]
pub struct EventEmitter {
    listeners: Mutex<Vec<Sender<NetworkEvent>>>,
}

impl EventEmitter {
    /// Adds a listener.
    pub fn subscribe(&self, tx: Sender<NetworkEvent>) {
        self.lock().push(tx);
    }

    /// Sends an event to every live listener.
    pub fn emit(&self, event: NetworkEvent) {
        log::debug!("event {:?} for network '{}'", event.kind, event.name);
        self.lock().retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender<NetworkEvent>>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }
}
