//! The `OrderPlaced` event: the contract between `order-service`, which publishes it, and
//! `inventory-service`, which applies it. Both check it with the same code, so an event the
//! publisher accepts is never refused by the subscriber, and the subscriber refuses exactly what
//! the publisher would have refused when something else writes to the topic.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::input;

/// Topic the event is published to (the tutorial's).
pub const TOPIC: &str = "OrderPlaced";
/// Largest quantity one order may ask for.
pub const MAX_ORDER_QUANTITY: u64 = 10_000;
/// Largest numeric orderId accepted: 2^53 - 1, the largest integer every JSON client
/// (JavaScript included) represents exactly, so a number means the same order everywhere.
pub const MAX_NUMERIC_ORDER_ID: u64 = (1 << 53) - 1;

/// An order that was placed: `{"orderId": "order-1001", "itemId": "item1", "quantity": 10}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// Identifies the order; an order is applied at most once per item.
    pub order_id: String,
    /// The item ordered.
    pub item_id: String,
    /// How many, 1 to [`MAX_ORDER_QUANTITY`].
    pub quantity: u64,
}

impl OrderPlaced {
    /// The event in `obj`, or an error naming the first field that is missing or wrong.
    ///
    /// `orderId` may also be a non-negative integer, as Dapr's quickstarts and the
    /// service-invocation tutorial send it; it becomes its decimal string, so `42` and `"42"` are
    /// one order (applied once).
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        Ok(Self {
            order_id: input::identifier_or_integer(obj, "orderId", MAX_NUMERIC_ORDER_ID)?,
            item_id: input::identifier(obj, "itemId")?,
            quantity: input::integer(obj, "quantity", 1..=MAX_ORDER_QUANTITY)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<OrderPlaced, ApiError> {
        match v {
            Value::Object(m) => OrderPlaced::from_json(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_tutorials_order_is_valid_and_round_trips() {
        let v = json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10});
        let order = parse(v.clone()).unwrap();
        assert_eq!(order.quantity, 10);
        assert_eq!(serde_json::to_value(&order).unwrap(), v);
    }

    #[test]
    fn a_numeric_order_id_is_the_same_order_as_its_decimal_string() {
        let numeric = parse(json!({"orderId": 42, "itemId": "item1", "quantity": 1})).unwrap();
        let text = parse(json!({"orderId": "42", "itemId": "item1", "quantity": 1})).unwrap();
        assert_eq!(numeric, text);
        assert_eq!(numeric.order_id, "42");
        assert_eq!(
            parse(json!({"orderId": -1, "itemId": "item1", "quantity": 1}))
                .unwrap_err()
                .field(),
            Some("orderId")
        );
        assert!(
            parse(json!({"orderId": MAX_NUMERIC_ORDER_ID + 1, "itemId": "i", "quantity": 1}))
                .is_err()
        );
    }

    #[test]
    fn each_field_is_checked_by_name() {
        let cases = [
            (json!({"itemId": "i", "quantity": 1}), "orderId"),
            (
                json!({"orderId": "", "itemId": "i", "quantity": 1}),
                "orderId",
            ),
            (
                json!({"orderId": "o", "itemId": "a b", "quantity": 1}),
                "itemId",
            ),
            (
                json!({"orderId": "o", "itemId": "i", "quantity": 0}),
                "quantity",
            ),
            (
                json!({"orderId": "o", "itemId": "i", "quantity": 10_001}),
                "quantity",
            ),
            (
                json!({"orderId": "o", "itemId": "i", "quantity": "3"}),
                "quantity",
            ),
        ];
        for (v, field) in cases {
            assert_eq!(parse(v.clone()).unwrap_err().field(), Some(field), "{v}");
        }
    }
}
