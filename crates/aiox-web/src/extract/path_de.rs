//! Deserialization of route URL parameters for the `Path<T>` extractor.
//!
//! A matched route yields an ordered list of percent-decoded `(name, value)` pairs.
//! [`from_params`] turns it into a `T: Deserialize`: a single primitive, newtype or
//! unit-only enum (exactly one parameter); a tuple or tuple struct (by position, the
//! arity must equal the parameter count); a sequence of all values (`Vec<u32>`) or of
//! `(name, value)` pairs; a struct or map (by name). Values are parsed with
//! [`str::parse`]; errors name the parameter and never echo more than 100 characters
//! of a value. A wrong parameter count is a programming error
//! ([`PathDeError::is_count_mismatch`]); a value that does not parse is the client's.

use std::{fmt, slice, str::FromStr, sync::Arc};

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, Unexpected};
use serde::de::{VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, forward_to_deserialize_any};

/// Longest prefix (in characters) of a value that an error message may echo.
const MAX_ECHO_CHARS: usize = 100;

/// One route parameter: its name and its percent-decoded value.
type Param = (Arc<str>, String);

/// Result of a deserializer method driving visitor `V`.
type Out<'de, V> = Result<<V as Visitor<'de>>::Value, PathDeError>;

/// Deserializes the route parameters `params` into `T`; strings may borrow from `params`.
pub(crate) fn from_params<'de, T: Deserialize<'de>>(
    params: &'de [Param],
) -> Result<T, PathDeError> {
    T::deserialize(ParamsDeserializer { params })
}

/// What went wrong, which decides who is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// The target expects a different number of parameters than the route has.
    CountMismatch,
    /// A value could not be parsed as the requested primitive.
    Parse,
    /// The target type cannot be built from path parameters at all.
    Unsupported,
    /// Any other error, mostly from `Deserialize` impls (missing field, unknown variant).
    Custom,
}

/// Error produced when route parameters cannot be deserialized into the target type.
#[derive(Debug)]
pub(crate) struct PathDeError {
    kind: ErrorKind,
    message: String,
}

impl PathDeError {
    /// Creates an error of the given kind.
    fn new(kind: ErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// The target expects `expected` parameters but the route has `got`.
    fn count_mismatch(expected: usize, got: usize) -> Self {
        let msg = format!("wrong number of path parameters: expected {expected}, got {got}");
        Self::new(ErrorKind::CountMismatch, msg)
    }

    /// True if the target expects a different number of parameters than the route
    /// provides: a programming error (500), not the client's fault.
    pub(crate) fn is_count_mismatch(&self) -> bool {
        self.kind == ErrorKind::CountMismatch
    }

    /// Prefixes a generic error raised while deserializing the value of parameter `name`.
    fn in_param(mut self, name: &str) -> Self {
        if self.kind == ErrorKind::Custom {
            self.message = format!("parameter \"{}\": {}", name.escape_debug(), self.message);
        }
        self
    }
}

impl fmt::Display for PathDeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PathDeError {}

/// The overrides keep client-supplied strings truncated in messages.
impl de::Error for PathDeError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Self::new(ErrorKind::Custom, msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid type: {}, expected {exp}",
            Shown(unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid value: {}, expected {exp}",
            Shown(unexp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let variant = Truncated(variant);
        Self::custom(format_args!(
            "unknown variant \"{variant}\", expected one of {expected:?}"
        ))
    }
}

/// Displays a string escaped and cut to [`MAX_ECHO_CHARS`] characters (plus `...`).
struct Truncated<'a>(&'a str);

impl fmt::Display for Truncated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_ECHO_CHARS) {
            Some((end, _)) => write!(f, "{}...", self.0[..end].escape_debug()),
            None => write!(f, "{}", self.0.escape_debug()),
        }
    }
}

/// Displays an [`Unexpected`] with strings truncated and bytes not echoed.
struct Shown<'a>(Unexpected<'a>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Str(s) => write!(f, "string \"{}\"", Truncated(s)),
            Unexpected::Bytes(_) => f.write_str("byte array"),
            other => other.fmt(f),
        }
    }
}

/// Deserializer over the whole parameter list (the top level of `Path<T>`).
#[derive(Debug, Clone, Copy)]
struct ParamsDeserializer<'de> {
    params: &'de [Param],
}

impl<'de> ParamsDeserializer<'de> {
    /// The only parameter, for targets that take a single value.
    fn single(self) -> Result<ValueDeserializer<'de>, PathDeError> {
        match self.params {
            [param] => Ok(ValueDeserializer::new(param, false)),
            _ => Err(PathDeError::count_mismatch(1, self.params.len())),
        }
    }
}

/// Forwards single-value methods to the one parameter's [`ValueDeserializer`].
macro_rules! forward_to_single {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
            let value = self.single()?;
            value.$method(visitor).map_err(|e| e.in_param(value.name))
        }
    )*};
}

impl<'de> Deserializer<'de> for ParamsDeserializer<'de> {
    type Error = PathDeError;

    forward_to_single! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_identifier
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        self.deserialize_map(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        match self.params.len() {
            0 => visitor.visit_unit(),
            n => Err(PathDeError::count_mismatch(0, n)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &str, visitor: V) -> Out<'de, V> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &str, visitor: V) -> Out<'de, V> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_seq(ParamSeq(self.params.iter()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Out<'de, V> {
        if len != self.params.len() {
            return Err(PathDeError::count_mismatch(len, self.params.len()));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V>(self, _: &str, len: usize, visitor: V) -> Out<'de, V>
    where
        V: Visitor<'de>,
    {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_map(ParamMap {
            iter: self.params.iter(),
            pending: None,
        })
    }

    fn deserialize_struct<V>(self, _: &str, _: &[&str], visitor: V) -> Out<'de, V>
    where
        V: Visitor<'de>,
    {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V>(self, _: &str, _: &[&str], visitor: V) -> Out<'de, V>
    where
        V: Visitor<'de>,
    {
        let value = self.single()?;
        visitor
            .visit_enum(value)
            .map_err(|e| e.in_param(value.name))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_unit()
    }
}

/// Deserializer for one parameter's value.
#[derive(Debug, Clone, Copy)]
struct ValueDeserializer<'de> {
    name: &'de str,
    value: &'de str,
    /// Element of a top-level sequence: may also become a `(name, value)` pair.
    in_seq: bool,
}

impl<'de> ValueDeserializer<'de> {
    fn new(param: &'de Param, in_seq: bool) -> Self {
        Self {
            name: &param.0,
            value: &param.1,
            in_seq,
        }
    }

    /// Parses the value with [`str::parse`], naming the parameter and `expected` type on failure.
    fn parse<T: FromStr>(self, expected: &str) -> Result<T, PathDeError> {
        self.value.parse().map_err(|_| {
            let (name, value) = (self.name.escape_debug(), Truncated(self.value));
            let msg = format!("cannot parse parameter \"{name}\" (\"{value}\") as {expected}");
            PathDeError::new(ErrorKind::Parse, msg)
        })
    }

    /// The value cannot be turned into `what`.
    fn unsupported(self, what: &str) -> PathDeError {
        let name = self.name.escape_debug();
        let msg = format!("cannot deserialize parameter \"{name}\" into {what}: unsupported type");
        PathDeError::new(ErrorKind::Unsupported, msg)
    }
}

/// Implements deserializer methods that parse the value into a primitive.
macro_rules! parse_value {
    ($($method:ident => $visit:ident($ty:ty),)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
            visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
        }
    )*};
}

/// Implements deserializer methods for targets a single value cannot become.
macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) => $what:literal,)*) => {$(
        fn $method<V: Visitor<'de>>(self, $(_: $arg,)* _: V) -> Out<'de, V> {
            Err(self.unsupported($what))
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = PathDeError;

    forward_to_deserialize_any! { str string identifier ignored_any }

    parse_value! {
        deserialize_bool => visit_bool(bool),
        deserialize_i8 => visit_i8(i8),
        deserialize_i16 => visit_i16(i16),
        deserialize_i32 => visit_i32(i32),
        deserialize_i64 => visit_i64(i64),
        deserialize_i128 => visit_i128(i128),
        deserialize_u8 => visit_u8(u8),
        deserialize_u16 => visit_u16(u16),
        deserialize_u32 => visit_u32(u32),
        deserialize_u64 => visit_u64(u64),
        deserialize_u128 => visit_u128(u128),
        deserialize_f32 => visit_f32(f32),
        deserialize_f64 => visit_f64(f64),
        deserialize_char => visit_char(char),
    }

    unsupported! {
        deserialize_seq() => "a sequence",
        deserialize_tuple_struct(&str, usize) => "a tuple struct",
        deserialize_map() => "a map",
        deserialize_struct(&str, &[&str]) => "a struct",
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_borrowed_str(self.value)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_borrowed_bytes(self.value.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Out<'de, V> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &str, visitor: V) -> Out<'de, V> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &str, visitor: V) -> Out<'de, V> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Out<'de, V> {
        if self.in_seq && len == 2 {
            let value = ValueDeserializer {
                in_seq: false,
                ..self
            };
            return visitor.visit_seq(PairAccess {
                name: Some(self.name),
                value: Some(value),
            });
        }
        Err(self.unsupported("a tuple"))
    }

    fn deserialize_enum<V>(self, _: &str, _: &[&str], visitor: V) -> Out<'de, V>
    where
        V: Visitor<'de>,
    {
        visitor.visit_enum(self)
    }
}

/// A value names a unit variant of an enum.
impl<'de> EnumAccess<'de> for ValueDeserializer<'de> {
    type Error = PathDeError;
    type Variant = UnitOnly<'de>;

    fn variant_seed<S>(self, seed: S) -> Result<(S::Value, UnitOnly<'de>), PathDeError>
    where
        S: DeserializeSeed<'de>,
    {
        Ok((seed.deserialize(self)?, UnitOnly(self)))
    }
}

/// Variant access that accepts unit variants only.
#[derive(Debug)]
struct UnitOnly<'de>(ValueDeserializer<'de>);

impl<'de> VariantAccess<'de> for UnitOnly<'de> {
    type Error = PathDeError;

    fn unit_variant(self) -> Result<(), PathDeError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, PathDeError> {
        Err(self.0.unsupported("a newtype enum variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Out<'de, V> {
        Err(self.0.unsupported("a tuple enum variant"))
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &[&str], _: V) -> Out<'de, V> {
        Err(self.0.unsupported("a struct enum variant"))
    }
}

/// Sequence of all parameter values, in route order.
#[derive(Debug)]
struct ParamSeq<'de>(slice::Iter<'de, Param>);

impl<'de> SeqAccess<'de> for ParamSeq<'de> {
    type Error = PathDeError;

    fn next_element_seed<S>(&mut self, seed: S) -> Result<Option<S::Value>, PathDeError>
    where
        S: DeserializeSeed<'de>,
    {
        let Some(param) = self.0.next() else {
            return Ok(None);
        };
        let value = ValueDeserializer::new(param, true);
        seed.deserialize(value)
            .map(Some)
            .map_err(|e| e.in_param(value.name))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A `(name, value)` pair: element of a sequence such as `Vec<(String, u32)>`.
#[derive(Debug)]
struct PairAccess<'de> {
    name: Option<&'de str>,
    value: Option<ValueDeserializer<'de>>,
}

impl<'de> SeqAccess<'de> for PairAccess<'de> {
    type Error = PathDeError;

    fn next_element_seed<S>(&mut self, seed: S) -> Result<Option<S::Value>, PathDeError>
    where
        S: DeserializeSeed<'de>,
    {
        if let Some(name) = self.name.take() {
            seed.deserialize(BorrowedStrDeserializer::new(name))
                .map(Some)
        } else {
            self.value
                .take()
                .map(|value| seed.deserialize(value))
                .transpose()
        }
    }
}

/// Map from parameter names to values, in route order.
#[derive(Debug)]
struct ParamMap<'de> {
    iter: slice::Iter<'de, Param>,
    /// The parameter whose key was returned last and whose value is due.
    pending: Option<&'de Param>,
}

impl<'de> MapAccess<'de> for ParamMap<'de> {
    type Error = PathDeError;

    fn next_key_seed<S>(&mut self, seed: S) -> Result<Option<S::Value>, PathDeError>
    where
        S: DeserializeSeed<'de>,
    {
        let Some(param) = self.iter.next() else {
            return Ok(None);
        };
        self.pending = Some(param);
        seed.deserialize(BorrowedStrDeserializer::new(&param.0))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, PathDeError> {
        let Some(param) = self.pending.take() else {
            return Err(de::Error::custom("map value requested before its key"));
        };
        let value = ValueDeserializer::new(param, false);
        seed.deserialize(value).map_err(|e| e.in_param(value.name))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use std::collections::{BTreeMap, HashMap};

    fn params(pairs: &[(&str, &str)]) -> Vec<Param> {
        pairs
            .iter()
            .map(|&(n, v)| (Arc::from(n), v.to_owned()))
            .collect()
    }

    fn ok<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> T {
        from_params(&params(pairs)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err<T: DeserializeOwned + fmt::Debug>(pairs: &[(&str, &str)]) -> PathDeError {
        from_params::<T>(&params(pairs)).unwrap_err()
    }

    fn unsupported(e: &PathDeError) -> bool {
        e.kind == ErrorKind::Unsupported
    }

    /// Message of a client (non-count-mismatch, supported type) error.
    fn msg<T: DeserializeOwned + fmt::Debug>(pairs: &[(&str, &str)]) -> String {
        let e = err::<T>(pairs);
        assert!(!e.is_count_mismatch() && !unsupported(&e), "{e}");
        e.to_string()
    }

    #[test]
    fn single_primitives() {
        assert_eq!(ok::<u32>(&[("x", "42")]), 42);
        assert_eq!(ok::<i64>(&[("x", "-7")]), -7);
        assert_eq!(ok::<u128>(&[("x", &u128::MAX.to_string())]), u128::MAX);
        assert_eq!(ok::<f64>(&[("x", "2.5")]), 2.5);
        assert!(ok::<bool>(&[("x", "true")]));
        assert_eq!(ok::<char>(&[("x", "🦀")]), '🦀');
        assert_eq!(ok::<String>(&[("x", "日本語 🦀")]), "日本語 🦀");
        assert_eq!(ok::<Option<u8>>(&[("x", "3")]), Some(3));
        let p = params(&[("x", "borrowed")]);
        let s: &str = from_params(&p).unwrap();
        assert!(std::ptr::eq(s, p[0].1.as_str()));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Id(u64);

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Open,
        Closed,
        Other(#[allow(dead_code)] u8),
    }

    #[test]
    fn newtypes_and_enums() {
        assert_eq!(ok::<Id>(&[("id", "9")]), Id(9));
        assert_eq!(ok::<Kind>(&[("k", "closed")]), Kind::Closed);
        assert_eq!(
            ok::<Vec<Kind>>(&[("a", "open"), ("b", "closed")]),
            [Kind::Open, Kind::Closed]
        );
        let expected = r#"parameter "k": unknown variant "bogus", expected one of ["open", "closed", "other"]"#;
        assert_eq!(msg::<Kind>(&[("k", "bogus")]), expected);
        assert!(unsupported(&err::<Kind>(&[("k", "other")])));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair(String, u32);

    #[test]
    fn tuples_by_position() {
        let pairs = [("slug", "héllo"), ("id", "42")];
        assert_eq!(ok::<(String, u32)>(&pairs), ("héllo".to_owned(), 42));
        assert_eq!(ok::<Pair>(&pairs), Pair("héllo".to_owned(), 42));
        let p = params(&pairs);
        assert_eq!(from_params::<(&str, &str)>(&p).unwrap(), ("héllo", "42"));
        let expected = r#"cannot parse parameter "slug" ("héllo") as u32"#;
        assert_eq!(msg::<(u32, String)>(&pairs), expected);
    }

    #[test]
    fn count_mismatch() {
        let two = [("a", "1"), ("b", "2")];
        for e in [
            err::<(u32, u32, u32)>(&two),
            err::<(u32,)>(&two),
            err::<Pair>(&[("a", "x")]),
            err::<u32>(&two),
            err::<u32>(&[]),
            err::<Kind>(&two),
            err::<()>(&two),
        ] {
            assert!(e.is_count_mismatch() && !unsupported(&e), "{e}");
        }
        let expected = "wrong number of path parameters: expected 1, got 2";
        assert_eq!(err::<u32>(&two).to_string(), expected);
        ok::<()>(&[]);
    }

    #[test]
    fn sequences() {
        let pairs = [("a", "1"), ("b", "20"), ("ü", "300")];
        assert_eq!(ok::<Vec<String>>(&pairs), ["1", "20", "300"]);
        assert_eq!(ok::<Vec<u32>>(&pairs), [1, 20, 300]);
        let expected = [("a".into(), 1), ("b".into(), 20), ("ü".into(), 300)];
        assert_eq!(ok::<Vec<(String, u16)>>(&pairs), expected);
        assert!(ok::<Vec<u32>>(&[]).is_empty());
        let expected = r#"cannot parse parameter "ü" ("300") as u8"#;
        assert_eq!(msg::<Vec<u8>>(&pairs), expected);
        assert!(unsupported(&err::<Vec<(u8, u8, u8)>>(&pairs)));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Params<'a> {
        id: u32,
        slug: String,
        tag: &'a str,
        page: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[allow(dead_code)]
        id: u32,
    }

    #[test]
    fn structs_and_maps_by_name() {
        let p = params(&[
            ("tag", "ü"),
            ("extra", "x"),
            ("slug", "日本語 🦀"),
            ("id", "42"),
        ]);
        let got: Params<'_> = from_params(&p).unwrap();
        assert_eq!(
            got,
            Params {
                id: 42,
                slug: "日本語 🦀".into(),
                tag: "ü",
                page: None
            }
        );
        assert!(std::ptr::eq(got.tag, p[0].1.as_str()));
        let map: HashMap<String, String> = from_params(&p).unwrap();
        assert_eq!((map.len(), map["slug"].as_str()), (4, "日本語 🦀"));
        let map = ok::<BTreeMap<String, u32>>(&[("a", "1"), ("b", "2")]);
        assert_eq!(map, BTreeMap::from([("a".into(), 1), ("b".into(), 2)]));

        assert!(msg::<Strict>(&[("id", "1"), ("x", "2")]).contains("unknown field `x`"));
        let p = params(&[("id", "1"), ("tag", "t")]);
        let missing = from_params::<Params<'_>>(&p).unwrap_err();
        assert!(!missing.is_count_mismatch() && missing.to_string() == "missing field `slug`");
        let p = params(&[("id", "abc"), ("slug", "s"), ("tag", "t")]);
        let expected = r#"cannot parse parameter "id" ("abc") as u32"#;
        assert_eq!(
            from_params::<Params<'_>>(&p).unwrap_err().to_string(),
            expected
        );
        assert!(unsupported(&err::<HashMap<String, Vec<u32>>>(&[(
            "a", "1"
        )])));
    }

    #[test]
    fn errors_truncate_and_escape_values() {
        let (long, exact) = ("é".repeat(150), "x".repeat(100));
        let expected = format!(
            r#"cannot parse parameter "id" ("{}...") as u32"#,
            "é".repeat(100)
        );
        assert_eq!(msg::<u32>(&[("id", &long)]), expected);
        let expected = format!(r#"cannot parse parameter "f" ("{exact}") as bool"#);
        assert_eq!(msg::<bool>(&[("f", &exact)]), expected);
        let m = msg::<Kind>(&[("k", &long)]);
        assert!(
            m.contains(&format!("\"{}...\"", "é".repeat(100))) && !m.contains(&long),
            "{m}"
        );
        let expected = r#"cannot parse parameter "c" ("ab\"\n") as char"#;
        assert_eq!(msg::<char>(&[("c", "ab\"\n")]), expected);
        let e: Box<dyn std::error::Error> = Box::new(err::<f32>(&[("x", "")]));
        assert_eq!(e.to_string(), r#"cannot parse parameter "x" ("") as f32"#);
    }
}
