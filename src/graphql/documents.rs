//! Parsed documents, remembered by their text. Clients send the same few
//! operations again and again, and parsing is a measurable share of a small
//! request: about 5 % of the server's CPU per `createIncident`. A document
//! parsed once is cloned for the next request with the same text; every
//! check on the document (the request policy's limits, introspection, the
//! validation against the schema) still runs on each request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::ExecutableDocument,
};

use crate::memo::Memo;

/// Texts longer than this are parsed every time: the memory holds the
/// operations clients repeat, not whatever a caller sends.
const MAX_TEXT: usize = 16 * 1024;
/// Documents remembered at most; the memory starts afresh when full.
const MAX_DOCUMENTS: usize = 512;
/// How long a document is remembered.
const KEPT_FOR: Duration = Duration::from_secs(3600);

/// The extension's factory; the innermost extension, so that the others see
/// the parse as before.
#[derive(Clone)]
pub struct ParsedDocuments(Arc<Documents>);

struct Documents {
    memo: Memo<String, Arc<ExecutableDocument>>,
    reused: AtomicU64,
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(Arc::new(Documents {
            memo: Memo::new(KEPT_FOR, MAX_DOCUMENTS),
            reused: AtomicU64::new(0),
        }))
    }
}

#[cfg(test)]
impl ParsedDocuments {
    /// How many requests used a remembered document.
    fn reused(&self) -> u64 {
        self.0.reused.load(Ordering::Relaxed)
    }
}

impl ExtensionFactory for ParsedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParsedDocuments {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.0.memo.get(query, |_| true) {
            self.0.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(ExecutableDocument::clone(&document));
        }
        let document = next.run(ctx, query, variables).await?;
        if query.len() <= MAX_TEXT {
            self.0
                .memo
                .put(query.to_owned(), Arc::new(document.clone()));
        }
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn hello(&self, name: String) -> String {
            format!("Hello, {name}")
        }
    }

    #[tokio::test]
    async fn a_repeated_text_reuses_its_document_and_answers_the_same() {
        let documents = ParsedDocuments::default();
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(documents.clone())
            .finish();
        let query = "query($n: String!) { hello(name: $n) }";
        let run = |name: &str| {
            let request = async_graphql::Request::new(query)
                .variables(Variables::from_json(serde_json::json!({"n": name})));
            schema.execute(request)
        };
        let first = run("Rita").await;
        assert_eq!(documents.reused(), 0);
        let second = run("Nina").await;
        assert_eq!(documents.reused(), 1);
        assert_eq!(
            first.data.into_json().ok(),
            Some(serde_json::json!({"hello": "Hello, Rita"}))
        );
        assert_eq!(
            second.data.into_json().ok(),
            Some(serde_json::json!({"hello": "Hello, Nina"}))
        );
        // A text that does not parse is never remembered: its error comes
        // each time.
        let broken = schema.execute("{ hello(").await;
        assert!(!broken.errors.is_empty());
        assert!(!schema.execute("{ hello(").await.errors.is_empty());
        assert_eq!(documents.reused(), 1);
    }
}
