//! The directory: townships, village points, agents and devices.
//!
//! Points carry their distance and usual fare to the county seat, so reports can count the
//! trips and money the proxy saved villagers.

use serde::{Deserialize, Serialize};

/// A township (乡镇), which runs a township server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Township {
    pub code: String,
    pub name: String,
}

/// A village service point (代办点), belonging to one township.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// 1–9999, the first digits of every ticket number made here.
    pub number: u32,
    pub name: String,
    pub township: String,
    /// Road distance to the county seat.
    pub distance_km: f64,
    /// Usual round-trip fare to the county seat, in fen.
    pub fare_fen: i64,
}

/// A village proxy agent (代理员).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub point: u32,
}

/// A tablet bound to one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub point: u32,
    /// 1–99 within the point; part of every ticket number it makes.
    pub number: u32,
    /// Hex Automerge actor id the device writes with.
    pub actor: String,
}
