//! What the client authenticates to a next hop with (SMTP AUTH).

/// What to authenticate to a route's next hops with.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Defer rather than send unauthenticated.
    pub required: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}
