//! RFC 8628 device authorization grant. Not built yet: the grant type is refused at /token
//! and left out of discovery until it is.

/// Whether the device flow is served (listed in discovery).
pub const ENABLED: bool = false;
