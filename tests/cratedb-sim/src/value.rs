//! Runtime values and column types, and their PostgreSQL/JSON encodings.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Timestamp with time zone, epoch milliseconds.
    Ts(i64),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

/// A column type (CrateDB type, mapped to a PostgreSQL type on the wire).
#[derive(Debug, Clone, PartialEq)]
pub enum ColType {
    /// CrateDB `TEXT` → PostgreSQL `varchar`.
    Text,
    /// `INTEGER` → `int4`.
    Int4,
    /// `BIGINT` → `int8`.
    Int8,
    /// `REAL` → `float4`.
    Float4,
    /// `DOUBLE PRECISION` → `float8`.
    Float8,
    Bool,
    /// `TIMESTAMP WITH TIME ZONE` → `timestamptz`.
    Timestamp,
    /// `ARRAY(x)` → `x[]` (`varchar[]`, `json[]`, ...).
    Array(Box<ColType>),
    /// `OBJECT` → `json`.
    Object(ObjType),
}

/// The known children of an object column.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjType {
    pub fields: Vec<(String, ColType)>,
    /// Type of undeclared children (dynamic objects), `None` = strict.
    pub dynamic: Option<Box<ColType>>,
}

impl ObjType {
    pub fn strict(fields: Vec<(&str, ColType)>) -> Self {
        ObjType {
            fields: fields
                .into_iter()
                .map(|(k, t)| (k.to_string(), t))
                .collect(),
            dynamic: None,
        }
    }
    pub fn dynamic(child: ColType) -> Self {
        ObjType {
            fields: Vec::new(),
            dynamic: Some(Box::new(child)),
        }
    }
    pub fn child(&self, name: &str) -> Option<ColType> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, t)| t.clone())
            .or_else(|| self.dynamic.as_deref().cloned())
    }
}

impl ColType {
    /// `OBJECT` with the given children.
    pub fn obj(fields: Vec<(&str, ColType)>) -> ColType {
        ColType::Object(ObjType::strict(fields))
    }
    /// `ARRAY(t)`.
    pub fn array(t: ColType) -> ColType {
        ColType::Array(Box::new(t))
    }

    /// The PostgreSQL type CrateDB sends for this type.
    pub fn pg_type(&self) -> Type {
        match self {
            ColType::Text => Type::VARCHAR,
            ColType::Int4 => Type::INT4,
            ColType::Int8 => Type::INT8,
            ColType::Float4 => Type::FLOAT4,
            ColType::Float8 => Type::FLOAT8,
            ColType::Bool => Type::BOOL,
            ColType::Timestamp => Type::TIMESTAMPTZ,
            ColType::Object(_) => Type::JSON,
            ColType::Array(inner) => match inner.as_ref() {
                ColType::Text => Type::VARCHAR_ARRAY,
                ColType::Int4 => Type::INT4_ARRAY,
                ColType::Int8 => Type::INT8_ARRAY,
                ColType::Float4 => Type::FLOAT4_ARRAY,
                ColType::Float8 => Type::FLOAT8_ARRAY,
                ColType::Bool => Type::BOOL_ARRAY,
                ColType::Timestamp => Type::TIMESTAMPTZ_ARRAY,
                _ => Type::JSON_ARRAY,
            },
        }
    }

    /// CrateDB's name of the type (used by crash-like output and docs).
    pub fn crate_name(&self) -> String {
        match self {
            ColType::Text => "text".into(),
            ColType::Int4 => "integer".into(),
            ColType::Int8 => "bigint".into(),
            ColType::Float4 => "real".into(),
            ColType::Float8 => "double precision".into(),
            ColType::Bool => "boolean".into(),
            ColType::Timestamp => "timestamp with time zone".into(),
            ColType::Object(_) => "object".into(),
            ColType::Array(inner) => format!("{}_array", inner.crate_name()),
        }
    }

    /// CrateDB's type id in `col_types` of an HTTP answer (`DataType.id()`;
    /// arrays are `[100, inner]`).
    pub fn crate_type_id(&self) -> serde_json::Value {
        match self {
            ColType::Bool => 3.into(),
            ColType::Text => 4.into(),
            ColType::Float8 => 6.into(),
            ColType::Float4 => 7.into(),
            ColType::Int4 => 9.into(),
            ColType::Int8 => 10.into(),
            ColType::Timestamp => 11.into(),
            ColType::Object(_) => 12.into(),
            ColType::Array(inner) => serde_json::json!([100, inner.crate_type_id()]),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(
            self,
            ColType::Int4 | ColType::Int8 | ColType::Float4 | ColType::Float8
        )
    }

    /// The type of `a` vs `b` when both may flow into one column.
    pub fn unify(a: &ColType, b: &ColType) -> ColType {
        if a == b {
            return a.clone();
        }
        if a.is_numeric() && b.is_numeric() {
            let float = matches!(a, ColType::Float4 | ColType::Float8)
                || matches!(b, ColType::Float4 | ColType::Float8);
            return if float {
                ColType::Float8
            } else {
                ColType::Int8
            };
        }
        a.clone()
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A text value.
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// `Some(s)` → text, `None` → NULL.
    pub fn opt_text(s: Option<&str>) -> Value {
        s.map(Value::text).unwrap_or(Value::Null)
    }

    /// Object from `(key, value)` pairs.
    pub fn object<I, K>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// JSON rendering, as CrateDB's HTTP endpoint returns it (timestamps as
    /// epoch milliseconds).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(s) => s.clone().into(),
            Value::Ts(ms) => (*ms).into(),
            Value::Array(items) => items.iter().map(Value::to_json).collect(),
            Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// From JSON (integral numbers become `Int`).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The string form CrateDB uses for settings and partition values.
    pub fn to_plain_string(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(java_double(*f)),
            Value::Text(s) => Some(s.clone()),
            Value::Ts(ms) => Some(ms.to_string()),
            other => Some(other.to_json().to_string()),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Ts(t) => Some(*t as f64),
            Value::Text(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    /// Truthiness for WHERE: only `true` passes.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// SQL comparison; `None` when either side is NULL or not comparable.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Text(b)) | (Value::Text(b), Value::Bool(a)) => {
                let bb = match b.to_ascii_lowercase().as_str() {
                    "true" | "t" => true,
                    "false" | "f" => false,
                    _ => return None,
                };
                let ord = a.cmp(&bb);
                Some(if matches!(self, Value::Bool(_)) {
                    ord
                } else {
                    ord.reverse()
                })
            }
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Ts(a), Value::Ts(b)) => Some(a.cmp(b)),
            (Value::Array(_), _)
            | (Value::Object(_), _)
            | (_, Value::Array(_))
            | (_, Value::Object(_)) => {
                if self.to_json() == other.to_json() {
                    Some(Ordering::Equal)
                } else {
                    None
                }
            }
            _ => {
                let (a, b) = (self.as_f64()?, other.as_f64()?);
                a.partial_cmp(&b)
            }
        }
    }

    /// Whether the value already has the representation of `ty` (no conversion needed).
    pub fn conforms(&self, ty: &ColType) -> bool {
        match (self, ty) {
            (Value::Null, _)
            | (Value::Text(_), ColType::Text)
            | (Value::Int(_), ColType::Int4 | ColType::Int8)
            | (Value::Float(_), ColType::Float4 | ColType::Float8)
            | (Value::Bool(_), ColType::Bool)
            | (Value::Ts(_), ColType::Timestamp)
            | (Value::Object(_), ColType::Object(_)) => true,
            (Value::Array(items), ColType::Array(inner)) => items.iter().all(|i| i.conforms(inner)),
            _ => false,
        }
    }

    /// [`Value::coerce`], borrowing when nothing needs converting.
    pub fn coerce_cow(&self, ty: &ColType) -> Result<Cow<'_, Value>, String> {
        if self.conforms(ty) {
            Ok(Cow::Borrowed(self))
        } else {
            self.coerce(ty).map(Cow::Owned)
        }
    }

    /// Convert to the declared column type where that is a lossless/usual cast.
    pub fn coerce(&self, ty: &ColType) -> Result<Value, String> {
        let bad = || {
            format!(
                "Cannot cast value `{}` to type `{}`",
                self.to_json(),
                ty.crate_name()
            )
        };
        Ok(match (ty, self) {
            (_, Value::Null) => Value::Null,
            (ColType::Text, Value::Text(_)) => self.clone(),
            (ColType::Text, Value::Object(_) | Value::Array(_)) => {
                Value::Text(self.to_json().to_string())
            }
            (ColType::Text, v) => Value::Text(v.to_plain_string().unwrap_or_default()),
            (ColType::Int4 | ColType::Int8, Value::Int(_)) => self.clone(),
            (ColType::Int4 | ColType::Int8, Value::Float(f)) => Value::Int(f.round() as i64),
            (ColType::Int4 | ColType::Int8, Value::Text(s)) => {
                Value::Int(s.trim().parse::<i64>().map_err(|_| bad())?)
            }
            (ColType::Int4 | ColType::Int8, Value::Bool(b)) => Value::Int(*b as i64),
            (ColType::Float4 | ColType::Float8, v) => Value::Float(v.as_f64().ok_or_else(bad)?),
            (ColType::Bool, Value::Bool(_)) => self.clone(),
            (ColType::Bool, Value::Text(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" => Value::Bool(true),
                "false" | "f" => Value::Bool(false),
                _ => return Err(bad()),
            },
            (ColType::Timestamp, Value::Ts(_)) => self.clone(),
            (ColType::Timestamp, Value::Int(i)) => Value::Ts(*i),
            (ColType::Array(inner), Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .map(|v| v.coerce(inner))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            (ColType::Object(_), Value::Object(_)) => self.clone(),
            _ => return Err(bad()),
        })
    }
}

/// The JSON rendering of [`Value::to_json`], written straight to a serializer.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) | Value::Ts(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_unit(),
            Value::Text(t) => s.serialize_str(t),
            Value::Array(items) => s.collect_seq(items),
            Value::Object(m) => s.collect_map(m),
        }
    }
}

/// `Double.toString`-like rendering: integral values keep one decimal.
pub fn java_double(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

// ---------------------------------------------------------------------------
// Time helpers (no chrono): epoch millis <-> civil date.

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD HH:MM:SS.mmm+00` (PostgreSQL text format, UTC).
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}+00")
}

/// Current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// PostgreSQL encoding.

/// A value with its declared column type, encodable by pgwire.
#[derive(Debug)]
pub struct Cell<'a> {
    pub value: &'a Value,
    pub ty: &'a ColType,
}

type BoxErr = Box<dyn Error + Sync + Send>;

const PG_EPOCH_OFFSET_MS: i64 = 946_684_800_000;

fn encode_binary(value: &Value, ty: &ColType, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
    let v = value.coerce_cow(ty)?;
    match (v.as_ref(), ty) {
        (Value::Null, _) => return Ok(IsNull::Yes),
        (Value::Text(s), ColType::Text) => out.put_slice(s.as_bytes()),
        (Value::Int(i), ColType::Int4) => out.put_i32(i32::try_from(*i)?),
        (Value::Int(i), ColType::Int8) => out.put_i64(*i),
        (Value::Float(f), ColType::Float4) => out.put_f32(*f as f32),
        (Value::Float(f), ColType::Float8) => out.put_f64(*f),
        (Value::Bool(b), ColType::Bool) => out.put_u8(*b as u8),
        (Value::Ts(ms), ColType::Timestamp) => out.put_i64((ms - PG_EPOCH_OFFSET_MS) * 1000),
        (Value::Object(_), ColType::Object(_)) => serde_json::to_writer(out.writer(), v.as_ref())?,
        (Value::Array(items), ColType::Array(inner)) => {
            let elem_oid = match ty.pg_type() {
                t if t == Type::JSON_ARRAY => Type::JSON.oid(),
                t => match t.kind() {
                    postgres_types::Kind::Array(e) => e.oid(),
                    _ => Type::JSON.oid(),
                },
            };
            let json_elems = ty.pg_type() == Type::JSON_ARRAY;
            out.put_i32(if items.is_empty() { 0 } else { 1 });
            out.put_i32(items.iter().any(Value::is_null) as i32);
            out.put_u32(elem_oid);
            if !items.is_empty() {
                out.put_i32(items.len() as i32);
                out.put_i32(1);
            }
            for item in items {
                let len_at = out.len();
                out.put_i32(-1);
                let is_null = if json_elems {
                    if item.is_null() {
                        IsNull::Yes
                    } else {
                        serde_json::to_writer(out.writer(), item)?;
                        IsNull::No
                    }
                } else {
                    encode_binary(item, inner, out)?
                };
                if let IsNull::No = is_null {
                    let len = (out.len() - len_at - 4) as i32;
                    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        (v, t) => {
            return Err(format!("cannot encode {v:?} as {}", t.crate_name()).into());
        }
    }
    Ok(IsNull::No)
}

fn array_elem_text(s: &str) -> String {
    let needs_quote = s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
    if needs_quote {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

/// PostgreSQL text format of a (non-null) value of `ty`.
pub fn text_format(value: &Value, ty: &ColType) -> Result<Option<String>, String> {
    let v = value.coerce_cow(ty)?;
    Ok(match (v.as_ref(), ty) {
        (Value::Null, _) => None,
        (Value::Text(s), _) => Some(s.clone()),
        (Value::Int(i), _) => Some(i.to_string()),
        (Value::Float(f), ColType::Float4) => Some((*f as f32).to_string()),
        (Value::Float(f), _) => Some(f.to_string()),
        (Value::Bool(b), _) => Some(if *b { "t" } else { "f" }.into()),
        (Value::Ts(ms), _) => Some(format_timestamp(*ms)),
        (Value::Object(_), _) => {
            Some(serde_json::to_string(v.as_ref()).map_err(|e| e.to_string())?)
        }
        (Value::Array(items), ColType::Array(inner)) => {
            let json_elems = ty.pg_type() == Type::JSON_ARRAY;
            let mut parts = Vec::new();
            for item in items {
                if item.is_null() {
                    parts.push("NULL".to_string());
                } else if json_elems {
                    parts.push(array_elem_text(
                        &serde_json::to_string(item).map_err(|e| e.to_string())?,
                    ));
                } else {
                    let s = text_format(item, inner)?.unwrap_or_default();
                    parts.push(array_elem_text(&s));
                }
            }
            Some(format!("{{{}}}", parts.join(",")))
        }
        (Value::Array(_), _) => Some(v.to_json().to_string()),
    })
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        encode_binary(self.value, self.ty, out)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSqlText for Cell<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _format_options: &FormatOptions,
    ) -> Result<IsNull, BoxErr> {
        match text_format(self.value, self.ty)? {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_postgres() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000+00");
        assert_eq!(
            format_timestamp(1_718_000_000_123),
            "2024-06-10 06:13:20.123+00"
        );
    }

    #[test]
    fn text_arrays_quote_special_elements() {
        let v = Value::Array(vec![
            Value::text("doc.t1"),
            Value::text("a b"),
            Value::Null,
            Value::text("q\""),
        ]);
        let s = text_format(&v, &ColType::array(ColType::Text))
            .unwrap()
            .unwrap();
        assert_eq!(s, r#"{doc.t1,"a b",NULL,"q\""}"#);
    }

    #[test]
    fn comparisons_coerce_text_and_numbers() {
        assert_eq!(
            Value::Int(5).sql_cmp(&Value::text("5")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            Value::Float(99.5).sql_cmp(&Value::Int(100)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)), None);
        assert_eq!(
            Value::Bool(true).sql_cmp(&Value::text("TRUE")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn binary_int4_rejects_overflow_and_encodes_arrays() {
        let mut out = BytesMut::new();
        assert!(encode_binary(&Value::Int(1 << 40), &ColType::Int4, &mut out).is_err());
        let mut out = BytesMut::new();
        let v = Value::Array(vec![Value::text("a")]);
        encode_binary(&v, &ColType::array(ColType::Text), &mut out).unwrap();
        // ndim, hasnull, oid, len, lbound, elemlen, 'a'
        assert_eq!(out.len(), 4 * 5 + 4 + 1);
    }

    #[test]
    fn serializing_writes_what_to_json_builds() {
        let v = Value::object([
            (
                "a",
                Value::Array(vec![Value::Int(1), Value::Null, Value::Float(1.5)]),
            ),
            ("b", Value::Float(f64::NAN)),
            ("c", Value::Ts(1_718_000_000_000)),
            (
                "d",
                Value::object([("e", Value::text("x\"y")), ("f", Value::Bool(true))]),
            ),
            ("g", Value::Float(2.0)),
        ]);
        assert_eq!(serde_json::to_string(&v).unwrap(), v.to_json().to_string());
        assert!(Value::Array(vec![Value::text("a")]).conforms(&ColType::array(ColType::Text)));
        assert!(!Value::Array(vec![Value::Int(1)]).conforms(&ColType::array(ColType::Text)));
        assert!(matches!(
            Value::Int(1).coerce_cow(&ColType::Text).unwrap(),
            Cow::Owned(Value::Text(_))
        ));
    }
}
