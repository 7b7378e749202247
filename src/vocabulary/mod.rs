//! The words the database stores and the API speaks: the enums shared by the
//! entities, the domain rules and the resolvers, with the pure rules that
//! belong to each word (priority ranks, lifecycle moves, role order). Nothing
//! here touches the database or imports another module of the crate.

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            async_graphql::Enum, sea_orm::EnumIter, sea_orm::DeriveActiveEnum,
            serde::Serialize, serde::Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $( $(#[$vmeta])* #[sea_orm(string_value = $text)] $variant, )+
        }

        impl $name {
            /// The stored and displayed name.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )+ }
            }
        }
    };
}

mod catalog;
mod lifecycle;
mod role;
mod ticket;
mod webhook;

pub use catalog::{ApprovalMode, ApprovalRule, TaskTemplate};
pub use lifecycle::{ServiceStatus, Stage};
pub use role::{Role, RoleRules};
pub use ticket::*;
pub use webhook::{DeliveryOutcome, WebhookStatus};
