//! What a query costs, priced before it runs and measured after.
//!
//! Every field costs 1, and a field that returns a list costs 1 plus its
//! selection's cost once per row it may return: the `first`/`last` it asks
//! for (20 when it asks for none, at most 100) on paged fields, and the most
//! the list can hold on the others. Prices multiply through nesting, so a
//! cycle through the types (`ticket → service → openTickets → ticket …`)
//! costs what it could fetch. The price is computed from the schema's own
//! SDL, so a list field added tomorrow is priced without anyone remembering
//! to annotate it.

use std::collections::HashMap;

use async_graphql::{
    Positioned, Value, Variables,
    parser::{
        parse_schema,
        types::{
            BaseType, DocumentOperations, ExecutableDocument, Field, Selection, SelectionSet,
            TypeKind, TypeSystemDefinition,
        },
    },
};

use crate::paging::{DEFAULT_PAGE, MAX_PAGE};

/// Rows a list that is not paged may hold, when nothing smaller is known:
/// the cap on list inputs and pages alike.
pub const LIST_ROWS: u64 = 100;

/// Known bounds of lists smaller than [`LIST_ROWS`], each enforced where the
/// list is written (a form's fields, an item's tasks) or fixed by the model.
const SMALL_LISTS: [(&str, &str, u64); 8] = [
    ("Query", "lifecycleStages", 5),
    ("LifecycleStage", "nextStages", 5),
    ("QueueStats", "byPriority", 5),
    ("TicketEvent", "changes", 25),
    (
        "CatalogItem",
        "form",
        crate::catalog::form::MAX_FIELDS as u64,
    ),
    (
        "Ticket",
        "requestForm",
        crate::catalog::form::MAX_FIELDS as u64,
    ),
    (
        "CatalogItem",
        "tasks",
        crate::catalog::service::MAX_TASKS as u64,
    ),
    ("Ticket", "tasks", crate::catalog::service::MAX_TASKS as u64),
];

/// What the pricing needs to know of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldInfo {
    /// The named type it returns (list and non-null stripped).
    ty: String,
    /// Whether it returns a list.
    list: bool,
    /// Whether it takes `first` (a paged connection).
    paged: bool,
}

/// The fields of every object and interface type, read from the SDL.
#[derive(Debug, Default)]
pub struct TypeMap {
    /// Type name → field name → what the field returns.
    fields: HashMap<String, HashMap<String, FieldInfo>>,
}

impl TypeMap {
    /// Reads the object and interface types of `sdl`.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut fields: HashMap<String, HashMap<String, FieldInfo>> = HashMap::new();
        let Ok(document) = parse_schema(sdl) else {
            tracing::error!("the schema's own SDL does not parse; pricing every field at 1");
            return Self::default();
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let name = definition.node.name.node.to_string();
            let defined = match &definition.node.kind {
                TypeKind::Object(object) => &object.fields,
                TypeKind::Interface(interface) => &interface.fields,
                _ => continue,
            };
            for field in defined {
                let mut ty = &field.node.ty.node;
                let mut list = false;
                while let BaseType::List(inner) = &ty.base {
                    list = true;
                    ty = inner;
                }
                let BaseType::Named(named) = &ty.base else {
                    continue;
                };
                let paged = field
                    .node
                    .arguments
                    .iter()
                    .any(|argument| argument.node.name.node == "first");
                fields.entry(name.clone()).or_default().insert(
                    field.node.name.node.to_string(),
                    FieldInfo {
                        ty: named.to_string(),
                        list,
                        paged,
                    },
                );
            }
        }
        Self { fields }
    }

    /// Looked up by borrowed names: pricing runs for every request and
    /// allocates nothing per field.
    fn field(&self, parent: &str, name: &str) -> Option<&FieldInfo> {
        self.fields.get(parent)?.get(name)
    }
}

/// The price of the operation a request runs (of the dearest one when it
/// cannot be told which).
pub fn price(
    map: &TypeMap,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> u64 {
    let mut pricing = Pricing {
        map,
        document,
        variables,
        fragments: HashMap::new(),
    };
    let roots = |ty: async_graphql::parser::types::OperationType| match ty {
        async_graphql::parser::types::OperationType::Query => "Query",
        async_graphql::parser::types::OperationType::Mutation => "Mutation",
        async_graphql::parser::types::OperationType::Subscription => "Subscription",
    };
    match &document.operations {
        DocumentOperations::Single(operation) => {
            pricing.set(&operation.node.selection_set, roots(operation.node.ty))
        }
        DocumentOperations::Multiple(operations) => operations
            .iter()
            .filter(|(name, _)| operation_name.is_none_or(|wanted| name.as_str() == wanted))
            .map(|(_, operation)| {
                pricing.set(&operation.node.selection_set, roots(operation.node.ty))
            })
            .max()
            .unwrap_or(0),
    }
}

struct Pricing<'a> {
    map: &'a TypeMap,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Each fragment's price, once worked out: without it, fragments that
    /// spread others several times would take exponential time to price.
    fragments: HashMap<String, u64>,
}

impl Pricing<'_> {
    /// Recursion is bounded: the document's nesting, fragments included, was
    /// checked before it was parsed.
    fn set(&mut self, set: &Positioned<SelectionSet>, parent: &str) -> u64 {
        let mut total = 0u64;
        for item in &set.node.items {
            let cost = match &item.node {
                Selection::Field(field) => self.field(&field.node, parent),
                Selection::InlineFragment(fragment) => {
                    let ty = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(parent.to_owned(), |c| c.node.on.node.to_string());
                    self.set(&fragment.node.selection_set, &ty)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    if let Some(&known) = self.fragments.get(&name) {
                        known
                    } else if let Some(fragment) = self.document.fragments.get(name.as_str()) {
                        // Guards against a cycle (refused earlier, but cheap to be sure).
                        self.fragments.insert(name.clone(), 0);
                        let ty = fragment.node.type_condition.node.on.node.to_string();
                        let cost = self.set(&fragment.node.selection_set, &ty);
                        self.fragments.insert(name, cost);
                        cost
                    } else {
                        0
                    }
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }

    fn field(&mut self, field: &Field, parent: &str) -> u64 {
        let name = field.name.node.as_str();
        let map = self.map;
        let info = map.field(parent, name);
        let children = if field.selection_set.node.items.is_empty() {
            0
        } else {
            let ty = info.map_or("", |i| i.ty.as_str());
            self.set(&field.selection_set, ty)
        };
        let rows = match info {
            Some(info) if info.paged => self.page_size(field),
            Some(info) if info.list && parent.ends_with("Connection") => 1,
            Some(info) if info.list => SMALL_LISTS
                .iter()
                .find(|(ty, list, _)| *ty == parent && *list == name)
                .map_or(LIST_ROWS, |(_, _, rows)| *rows),
            _ => 1,
        };
        rows.saturating_mul(children).saturating_add(1)
    }

    /// The rows a paged field asks for: `first` or `last`, else the default.
    fn page_size(&self, field: &Field) -> u64 {
        let asked = ["first", "last"]
            .iter()
            .filter_map(|wanted| {
                let (_, value) = field.arguments.iter().find(|(n, _)| n.node == *wanted)?;
                let value = value
                    .node
                    .clone()
                    .into_const_with(|name| {
                        Ok::<Value, std::convert::Infallible>(
                            self.variables.get(&name).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .unwrap_or_default();
                match value {
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                }
            })
            .max();
        let max = u64::try_from(MAX_PAGE).unwrap_or(100);
        asked
            .unwrap_or_else(|| u64::try_from(DEFAULT_PAGE).unwrap_or(20))
            .min(max)
    }
}

/// What a response actually cost: one per field in it, each row of a list
/// counted (the price, with the lists as long as they came back).
pub fn measure(data: &Value) -> u64 {
    let mut stack = vec![data];
    let mut total = 0u64;
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(fields) => {
                total = total.saturating_add(u64::try_from(fields.len()).unwrap_or(u64::MAX));
                stack.extend(fields.values());
            }
            Value::List(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    const SDL: &str = r#"
        type Query { tickets(first: Int, last: Int): TicketConnection! ticket(id: ID!): Ticket
                     lifecycleStages: [Stage!]! }
        type Stage { name: String! }
        type TicketConnection { edges: [TicketEdge!]! nodes: [Ticket!]! totalCount: Int! }
        type TicketEdge { cursor: String! node: Ticket! }
        type Ticket { id: ID! title: String! approvals: [Approval!]! tags: [String!]!
                      service: Service }
        type Approval { state: String! }
        type Service { openTickets(first: Int): TicketConnection! }
    "#;

    fn cost(query: &str, variables: serde_json::Value) -> u64 {
        let map = TypeMap::from_sdl(SDL);
        let document = parse_query(query).expect("parses");
        price(&map, &document, None, &Variables::from_json(variables))
    }

    #[test]
    fn plain_fields_cost_one_each() {
        assert_eq!(cost("{ ticket(id: 1) { id title } }", json!({})), 3);
        // A list of scalars costs one: no rows to fetch per item.
        assert_eq!(cost("{ ticket(id: 1) { tags } }", json!({})), 2);
    }

    #[test]
    fn pages_multiply_by_the_rows_asked_for() {
        // tickets: 1 + 10 × (nodes: 1 + 1 × (id + title)) = 1 + 10 × 3
        assert_eq!(
            cost("{ tickets(first: 10) { nodes { id title } } }", json!({})),
            31
        );
        assert_eq!(
            cost(
                "query($n: Int) { tickets(last: $n) { nodes { id } } }",
                json!({"n": 7})
            ),
            15
        );
        // Default page 20; at most 100 whatever is asked.
        assert_eq!(cost("{ tickets { nodes { id } } }", json!({})), 41);
        assert_eq!(
            cost("{ tickets(first: 5000) { nodes { id } } }", json!({})),
            201
        );
    }

    #[test]
    fn plain_lists_are_priced_by_their_bound_and_nesting_multiplies() {
        assert_eq!(
            cost("{ ticket(id: 1) { approvals { state } } }", json!({})),
            1 + (1 + LIST_ROWS)
        );
        assert_eq!(cost("{ lifecycleStages { name } }", json!({})), 6);
        // The cycle of the issue: each level multiplies.
        let cycle = "{ tickets(first: 100) { nodes { service { openTickets(first: 100) { nodes { service { openTickets(first: 100) { nodes { id } } } } } } } } }";
        assert!(
            cost(cycle, json!({})) > 1_000_000,
            "{}",
            cost(cycle, json!({}))
        );
    }

    #[test]
    fn fragments_are_priced_where_they_are_spread() {
        let with = cost(
            "{ tickets(first: 10) { ...Page } } fragment Page on TicketConnection { nodes { id title } }",
            json!({}),
        );
        assert_eq!(with, 31);
        // Spread many times: priced each time, worked out once.
        let mut doc = String::from("{ ticket(id: 1) { ...F0 } }");
        for i in 0..30 {
            doc.push_str(&format!(
                " fragment F{i} on Ticket {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        doc.push_str(" fragment F30 on Ticket { id }");
        assert_eq!(cost(&doc, json!({})), 1 + (1u64 << 30));
    }

    #[test]
    fn responses_are_measured_by_what_came_back() {
        let data =
            Value::from_json(json!({"tickets": {"nodes": [{"id": 1}, {"id": 2}]}})).expect("value");
        assert_eq!(measure(&data), 4);
    }
}
