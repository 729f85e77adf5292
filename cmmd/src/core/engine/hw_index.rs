//! The hardware's key index: cdx identifies a connection by protocol and original tuple, with
//! no zone.
//!
//! Owns the index from that key to the table slot of the connection the hardware holds (or is
//! being given) under it. Contract: at most one tracked connection per hardware key is in
//! the hardware, so the same tuple in two zones is offloaded once (the other is refused as
//! `zone`), and a REMOVED event from cdx finds its connection in one lookup.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::Engine;
use crate::core::flow::{FlowId, FlowKey, Tuple};

/// Hardware key of a connection: cdx knows no zones.
pub(super) type HwKey = (u8, Tuple);

pub(super) fn hw_key(key: &FlowKey) -> HwKey {
    (key.proto, key.orig)
}

/// The index: table slots, hashed by the hardware key of the connection in them.
pub(super) struct HwIndex {
    pub(super) slots: HashTable<u32>,
    pub(super) hasher: DefaultHashBuilder,
}

impl HwIndex {
    /// Room for `capacity` connections up front, at most 65536 (it grows beyond).
    pub(super) fn with_capacity(capacity: usize) -> HwIndex {
        HwIndex {
            slots: HashTable::with_capacity(capacity.min(1 << 16)),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl Engine {
    fn hw_hash(&self, key: &HwKey) -> u64 {
        self.hw_index.hasher.hash_one(key)
    }

    pub(super) fn hw_index_find(&self, key: &HwKey) -> Option<FlowId> {
        let hash = self.hw_hash(key);
        let slot = *self.hw_index.slots.find(hash, |&s| {
            self.table
                .id_at(s)
                .and_then(|id| self.table.get(id))
                .is_some_and(|f| &hw_key(&f.key) == key)
        })?;
        self.table.id_at(slot)
    }

    pub(super) fn hw_index_insert(&mut self, id: FlowId) {
        let Some(flow) = self.table.get(id) else { return };
        let key = hw_key(&flow.key);
        if self.hw_index_find(&key).is_some() {
            return;
        }
        let hash = self.hw_hash(&key);
        let (table, hasher) = (&self.table, &self.hw_index.hasher);
        self.hw_index.slots.insert_unique(hash, id.slot(), |&s| {
            table.id_at(s).and_then(|i| table.get(i)).map_or(0, |f| hasher.hash_one(hw_key(&f.key)))
        });
    }

    pub(super) fn hw_index_remove(&mut self, id: FlowId) {
        let Some(flow) = self.table.get(id) else { return };
        let hash = self.hw_hash(&hw_key(&flow.key));
        if let Ok(entry) = self.hw_index.slots.find_entry(hash, |&s| s == id.slot()) {
            entry.remove();
        }
    }
}
