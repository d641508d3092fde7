//! The /authorize side: parsing and validating the request (RFC 6749 §4.1.1, §4.2.1, OIDC Core
//! §3.1.2.1, §3.2.2.1, §3.3.2.1, RFC 7636 §4.3), deciding whether a login or consent page is
//! needed, and issuing the code, the implicit tokens or both (the hybrid flow, OIDC Core §3.3).

mod decide;
mod issue;
mod request;

pub use decide::{Next, proceed};
pub use issue::issue;
pub use request::{
    AuthorizationRequest, DISPLAY_VALUES, PROMPT_VALUES, PageError, Validated, validate,
};
