//! JSON body extraction and field checks that answer in the shared [`ApiError`] shape.
//!
//! The services parse bodies into a JSON object first and check each field by hand, so a client
//! learns exactly which field is wrong and why ("quantity must be a positive integer, got 1.5"),
//! instead of a serde message about an internal type.

use std::ops::RangeInclusive;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Longest identifier (orderId, itemId) the services accept.
pub const MAX_ID_LEN: usize = 64;

/// A request body that is a JSON object. Rejections: 415 when the content type is not JSON,
/// 413 when the body is over the route's limit (axum's `DefaultBodyLimit`), 400 when it is not
/// JSON, 422 when it is JSON but not an object.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "request body is larger than this endpoint accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "request body could not be read",
                )
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(other) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!(
                    "request body must be a JSON object, got {}",
                    kind_of(&other)
                ),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("request body is not valid JSON: {e}"),
            )),
        }
    }
}

/// `application/json`, or any `application/*+json`, with optional parameters.
pub fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let essence = value
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A whole number in `range`, which starts at 1 (a "positive integer") or 0 ("non-negative").
pub fn integer(
    obj: &Map<String, Value>,
    field: &'static str,
    range: RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    let value = required(obj, field)?;
    let kind = if *range.start() == 0 {
        "non-negative"
    } else {
        "positive"
    };
    let message = match value.as_u64() {
        Some(n) if range.contains(&n) => return Ok(n),
        Some(n) if n > *range.end() => format!("{field} must be at most {}, got {n}", range.end()),
        Some(n) => format!("{field} must be a {kind} integer, got {n}"),
        None => format!("{field} must be a {kind} integer, got {}", describe(value)),
    };
    Err(ApiError::invalid_field(field, message))
}

/// A string identifier; see [`check_identifier`].
pub fn identifier(obj: &Map<String, Value>, field: &'static str) -> Result<String, ApiError> {
    match required(obj, field)? {
        Value::String(s) => {
            check_identifier(field, s)?;
            Ok(s.clone())
        }
        other => Err(ApiError::invalid_field(
            field,
            format!("{field} must be a string, got {}", describe(other)),
        )),
    }
}

/// A string identifier (see [`check_identifier`]), or a whole number from 0 to `max`, which
/// becomes its decimal string: `42` and `"42"` are the same identifier.
pub fn identifier_or_integer(
    obj: &Map<String, Value>,
    field: &'static str,
    max: u64,
) -> Result<String, ApiError> {
    let value = required(obj, field)?;
    if value.is_string() {
        return identifier(obj, field);
    }
    let message = match value.as_u64() {
        Some(id) if id <= max => return Ok(id.to_string()),
        Some(id) => format!("{field} must be at most {max} when it is a number, got {id}"),
        None => format!(
            "{field} must be a string or a non-negative integer, got {}",
            describe(value)
        ),
    };
    Err(ApiError::invalid_field(field, message))
}

/// 1 to [`MAX_ID_LEN`] characters from `A-Z a-z 0-9 . _ -`. The set keeps identifiers safe in
/// Dapr state keys (no `||`, no `/` or `+` that URL decoding would change), in log lines and in
/// URLs without escaping.
pub fn check_identifier(field: &'static str, value: &str) -> Result<(), ApiError> {
    let message = if value.is_empty() {
        format!("{field} must not be empty")
    } else if value.len() > MAX_ID_LEN {
        let len = value.len();
        format!("{field} must be at most {MAX_ID_LEN} characters, got {len}")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        format!("{field} may contain only letters, digits, '.', '_' and '-'")
    } else {
        return Ok(());
    };
    Err(ApiError::invalid_field(field, message))
}

fn required<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a Value, ApiError> {
    obj.get(field)
        .ok_or_else(|| ApiError::invalid_field(field, format!("{field} is required")))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a rejected value for an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 20 => format!("the string {s:?}"),
        other => kind_of(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn positive_integer_names_each_problem() {
        let cases = [
            (json!({}), "orderId is required"),
            (
                json!({"orderId": 0}),
                "orderId must be a positive integer, got 0",
            ),
            (
                json!({"orderId": -3}),
                "orderId must be a positive integer, got -3",
            ),
            (
                json!({"orderId": 1.5}),
                "orderId must be a positive integer, got 1.5",
            ),
            (
                json!({"orderId": "7"}),
                "orderId must be a positive integer, got the string \"7\"",
            ),
            (
                json!({"orderId": null}),
                "orderId must be a positive integer, got null",
            ),
            (json!({"orderId": 11}), "orderId must be at most 10, got 11"),
        ];
        for (body, want) in cases {
            let err = integer(&obj(body.clone()), "orderId", 1..=10).unwrap_err();
            assert_eq!(err.message(), want, "{body}");
            assert_eq!(err.field(), Some("orderId"));
            assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(
            integer(&obj(json!({"orderId": 10})), "orderId", 1..=10).unwrap(),
            10
        );
    }

    #[test]
    fn identifiers_are_limited_to_a_safe_set() {
        assert!(check_identifier("itemId", "item-1.a_B").is_ok());
        for bad in [
            "",
            "a b",
            "a||b",
            "a/b",
            "a+b",
            "é",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(check_identifier("itemId", bad).is_err(), "{bad:?}");
        }
        let err = identifier(&obj(json!({"itemId": 5})), "itemId").unwrap_err();
        assert_eq!(err.message(), "itemId must be a string, got 5");
    }

    #[test]
    fn an_identifier_may_be_a_non_negative_integer_and_becomes_its_decimal_string() {
        let id = |v: Value| identifier_or_integer(&obj(json!({ "orderId": v })), "orderId", 100);
        assert_eq!(id(json!("order-7")).unwrap(), "order-7");
        assert_eq!(id(json!(7)).unwrap(), "7");
        assert_eq!(id(json!(0)).unwrap(), "0");
        assert_eq!(id(json!(100)).unwrap(), "100");
        for (bad, message) in [
            (
                json!(-1),
                "orderId must be a string or a non-negative integer, got -1",
            ),
            (
                json!(1.5),
                "orderId must be a string or a non-negative integer, got 1.5",
            ),
            (
                json!(true),
                "orderId must be a string or a non-negative integer, got a boolean",
            ),
            (
                json!(101),
                "orderId must be at most 100 when it is a number, got 101",
            ),
            (
                json!("a b"),
                "orderId may contain only letters, digits, '.', '_' and '-'",
            ),
        ] {
            assert_eq!(id(bad.clone()).unwrap_err().message(), message, "{bad}");
        }
        let missing = identifier_or_integer(&obj(json!({})), "orderId", 100).unwrap_err();
        assert_eq!(missing.message(), "orderId is required");
    }

    #[test]
    fn json_content_types() {
        let with = |ct: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            has_json_content_type(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/cloudevents+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!has_json_content_type(&axum::http::HeaderMap::new()));
    }
}
