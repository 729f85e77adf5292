//! The hardware's key index: cdx identifies a connection by protocol and original tuple, with
//! no zone.
//!
//! Contract: at most one tracked connection per hardware key is in the hardware (or being
//! given to it): the key's *holder*, marked [`Facts::HW_KEY`]. The same tuple in two zones is
//! therefore offloaded once (the other is refused as `zone`), and a REMOVED event from cdx
//! finds its connection in at most two lookups.
//!
//! Almost every connection is in zone 0, where the flow table's own key is the hardware key
//! plus a zero: a holder in zone 0 is found by the table's lookup. Only holders in other
//! zones are kept in an index of their own, so the common case costs no second table (a
//! second index of every offloaded connection cost a cache miss per event;
//! `docs/performance.md`, 2026-12-03).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::Engine;
use super::lifecycle::Facts;
use crate::core::flow::{FlowId, FlowKey, Tuple};

/// Hardware key of a connection: cdx knows no zones.
pub(super) type HwKey = (u8, Tuple);

pub(super) fn hw_key(key: &FlowKey) -> HwKey {
    (key.proto, key.orig)
}

/// Table slots of the holders outside zone 0, hashed by their hardware key.
#[derive(Default)]
pub(super) struct HwIndex {
    zoned: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl HwIndex {
    /// Heap bytes, for the memory figures.
    pub(super) fn heap_bytes(&self) -> usize {
        self.zoned.allocation_size()
    }
}

impl Engine {
    fn holds_hw_key(&self, id: FlowId) -> bool {
        self.table.get(id).is_some_and(|f| f.facts.has(Facts::HW_KEY))
    }

    /// The holder of `key` outside zone 0.
    fn zoned_holder(&self, key: &HwKey) -> Option<FlowId> {
        if self.hw_index.zoned.is_empty() {
            return None;
        }
        let hash = self.hw_index.hasher.hash_one(key);
        let slot = *self.hw_index.zoned.find(hash, |&s| {
            self.table
                .id_at(s)
                .and_then(|id| self.table.get(id))
                .is_some_and(|f| f.facts.has(Facts::HW_KEY) && &hw_key(&f.key) == key)
        })?;
        self.table.id_at(slot)
    }

    /// The connection holding `key` in the hardware, in whatever zone.
    pub(super) fn hw_index_find(&self, key: &HwKey) -> Option<FlowId> {
        let (proto, orig) = *key;
        let in_zone_0 = self.table.find(&FlowKey { zone: 0, proto, orig });
        in_zone_0.filter(|&id| self.holds_hw_key(id)).or_else(|| self.zoned_holder(key))
    }

    /// The connection other than `id` holding `id`'s hardware key.
    pub(super) fn hw_key_held_by_other(&self, id: FlowId) -> Option<FlowId> {
        let flow = self.table.get(id)?;
        if flow.facts.has(Facts::HW_KEY) {
            return None;
        }
        let key = hw_key(&flow.key);
        if flow.key.zone == 0 {
            // The zone-0 candidate is `id` itself, which does not hold the key.
            return self.zoned_holder(&key);
        }
        self.hw_index_find(&key)
    }

    /// `id` takes its hardware key, unless another connection holds it.
    pub(super) fn hw_index_insert(&mut self, id: FlowId) {
        if self.hw_key_held_by_other(id).is_some() {
            return;
        }
        let Some(flow) = self.table.get_mut(id) else { return };
        if flow.facts.has(Facts::HW_KEY) {
            return;
        }
        flow.facts.set(Facts::HW_KEY);
        if flow.key.zone == 0 {
            return;
        }
        let hash = self.hw_index.hasher.hash_one(hw_key(&flow.key));
        let (table, hasher) = (&self.table, &self.hw_index.hasher);
        self.hw_index.zoned.insert_unique(hash, id.slot(), |&s| {
            table.id_at(s).and_then(|i| table.get(i)).map_or(0, |f| hasher.hash_one(hw_key(&f.key)))
        });
    }

    /// `id` lets go of its hardware key, if it held it.
    pub(super) fn hw_index_remove(&mut self, id: FlowId) {
        let Some(flow) = self.table.get_mut(id) else { return };
        if !flow.facts.has(Facts::HW_KEY) {
            return;
        }
        flow.facts.clear(Facts::HW_KEY);
        if flow.key.zone == 0 {
            return;
        }
        let hash = self.hw_index.hasher.hash_one(hw_key(&flow.key));
        if let Ok(entry) = self.hw_index.zoned.find_entry(hash, |&s| s == id.slot()) {
            entry.remove();
        }
    }
}
