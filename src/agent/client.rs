//! The reference agent's client side (filled in below).
