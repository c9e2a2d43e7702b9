//! The server's mail-authentication results (grant: `auth`): SPF, DKIM, ARC, DMARC and
//! iprev, computed once per message by the host.
//!
//! Plugin logic takes `&mut impl Auth`: [`HostAuth`] in the plugin, `testing::FakeAuth`
//! (a table of results) in host tests.

pub use crate::bindings::sluice::plugin::auth::{
    Alignment, ArcResult, DkimSignature, DmarcDisposition, DmarcResult, IprevResult, SpfIdentity, SpfResult,
    Verdict as AuthVerdict,
};

/// The results plugin logic reads.
pub trait Auth {
    fn spf(&mut self) -> Option<SpfResult>;
    fn dkim(&mut self) -> Vec<DkimSignature>;
    fn arc(&mut self) -> Option<ArcResult>;
    fn dmarc(&mut self) -> Option<DmarcResult>;
    fn iprev(&mut self) -> Option<IprevResult>;
}

/// The host's results for the current message.
pub struct HostAuth;

impl Auth for HostAuth {
    fn spf(&mut self) -> Option<SpfResult> {
        crate::bindings::sluice::plugin::auth::spf()
    }
    fn dkim(&mut self) -> Vec<DkimSignature> {
        crate::bindings::sluice::plugin::auth::dkim()
    }
    fn arc(&mut self) -> Option<ArcResult> {
        crate::bindings::sluice::plugin::auth::arc()
    }
    fn dmarc(&mut self) -> Option<DmarcResult> {
        crate::bindings::sluice::plugin::auth::dmarc()
    }
    fn iprev(&mut self) -> Option<IprevResult> {
        crate::bindings::sluice::plugin::auth::iprev()
    }
}
