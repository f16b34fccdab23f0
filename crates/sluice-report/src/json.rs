//! Reading a JSON array of flat objects as rows, streaming: one object at a time.
//!
//! Columns are the distinct keys, in order of first appearance: the header holds those of the first objects (up
//! to [`SAMPLE_OBJECTS`]), and a key first seen later is added as a last column, empty in the rows before it
//! ([`TableSink::add_column`]); a key missing from an object is an empty cell. Values must be strings, numbers,
//! booleans or null; a nested object or array is an error. Errors name the object's position in the array where
//! a CSV error would name a line. More than `max_columns` keys in one object ([`ReportError::TooManyKeys`]) or
//! between the objects read so far ([`ReportError::TooManyDistinctKeys`]) is an error; the keys of an object
//! past the limit are counted, not kept, so memory stays bounded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::value::RawValue;

use crate::error::ReportError;

/// How many objects are read before the header is given.
pub(crate) const SAMPLE_OBJECTS: usize = 1000;

/// One flat object: its keys and values as text, in order.
#[derive(Debug, Default)]
pub(crate) struct FlatObject {
    /// The distinct keys and their values (the last one of a repeated key), at most the limit of them.
    pub fields: Vec<(String, String)>,
    /// Set when the object has more distinct keys than the limit: how many keys it has in all (a repeated key
    /// counts each time). The keys past the limit are counted, not kept.
    pub excess: Option<usize>,
}

/// A value as a cell: a string's text, a number exactly as written (`19.90`, `12345678901234567890123`, read
/// later into a decimal like a CSV cell), `true` or `false`, or empty for null.
struct Scalar(String);

/// What a value must be, for the error about a nested one.
const SCALAR_EXPECTED: &str = "a string, number, boolean or null (not a nested object or array)";

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The raw text keeps a number as written; parsing it as a float would round it.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => match text.get(1..text.len() - 1).filter(|inner| !inner.contains('\\')) {
                Some(plain) => Ok(Scalar(plain.to_owned())),
                None => serde_json::from_str(text).map(Scalar).map_err(de::Error::custom),
            },
            Some(b'n') => Ok(Scalar(String::new())),
            Some(b'{') => Err(de::Error::invalid_type(Unexpected::Map, &SCALAR_EXPECTED)),
            Some(b'[') => Err(de::Error::invalid_type(Unexpected::Seq, &SCALAR_EXPECTED)),
            _ => Ok(Scalar(text.to_owned())),
        }
    }
}

impl<'de> Deserialize<'de> for FlatObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ObjectSeed { max_keys: usize::MAX }.deserialize(deserializer)
    }
}

/// Reads a [`FlatObject`] keeping at most `max_keys` distinct keys.
#[derive(Clone, Copy)]
struct ObjectSeed {
    max_keys: usize,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = FlatObject;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FlatObject, D::Error> {
        deserializer.deserialize_map(FlatObjectVisitor { max_keys: self.max_keys })
    }
}

struct FlatObjectVisitor {
    max_keys: usize,
}

impl<'de> Visitor<'de> for FlatObjectVisitor {
    type Value = FlatObject;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatObject, A::Error> {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut keys: usize = 0;
        while let Some(key) = map.next_key::<String>()? {
            keys += 1;
            let Scalar(value) = map.next_value()?;
            let room = fields.len() < self.max_keys;
            match fields.iter_mut().find(|(existing, _)| *existing == key) {
                Some(slot) => slot.1 = value,
                None if room => fields.push((key, value)),
                None => {
                    while map.next_key::<IgnoredAny>()?.is_some() {
                        keys += 1;
                        map.next_value::<IgnoredAny>()?;
                    }
                    return Ok(FlatObject { fields, excess: Some(keys) });
                }
            }
        }
        Ok(FlatObject { fields, excess: None })
    }
}

/// Receives the table a JSON array holds.
pub(crate) trait TableSink {
    /// Takes the header (position 0: the keys of the first objects) or a row (the object's 1-based position).
    fn push(&mut self, position: u64, fields: &[&str]) -> Result<(), ReportError>;
    /// Takes a key first seen after the header: a new last column, empty in every row before.
    fn add_column(&mut self, name: &str);
}

/// The columns found so far: every distinct key, in order of first appearance, at most `limit` of them.
struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
    limit: usize,
}

impl Columns {
    /// Checks the object at `position` against the limit and makes its new keys columns; returns where the new
    /// columns start.
    fn admit(&mut self, object: &FlatObject, position: u64) -> Result<usize, ReportError> {
        let limit = self.limit;
        if let Some(found) = object.excess {
            return Err(ReportError::TooManyKeys { object: position, found, limit });
        }
        let new = object.fields.iter().filter(|(key, _)| !self.index.contains_key(key)).count();
        let found = self.names.len() + new;
        if found > limit {
            return Err(ReportError::TooManyDistinctKeys { objects: position, found, limit });
        }
        let first_new = self.names.len();
        for (key, _) in &object.fields {
            if !self.index.contains_key(key) {
                self.index.insert(key.clone(), self.names.len());
                self.names.push(key.clone());
            }
        }
        Ok(first_new)
    }

    /// The object's values in column order (every key of it admitted).
    fn place<'o>(&self, object: &'o FlatObject) -> Vec<&'o str> {
        let mut row = vec![""; self.names.len()];
        for (key, value) in &object.fields {
            if let Some(slot) = self.index.get(key).and_then(|&at| row.get_mut(at)) {
                *slot = value.as_str();
            }
        }
        row
    }
}

struct Rows<'s> {
    sink: &'s mut dyn TableSink,
    failure: &'s RefCell<Option<ReportError>>,
    max_columns: usize,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of flat objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let failure = self.failure;
        let fail = |error: ReportError| {
            let message = error.to_string();
            *failure.borrow_mut() = Some(error);
            de::Error::custom(message)
        };
        let mut sample: Vec<FlatObject> = Vec::new();
        let mut columns = Columns { names: Vec::new(), index: HashMap::new(), limit: self.max_columns };
        let mut position: u64 = 0;
        let mut started = false;
        let seed = ObjectSeed { max_keys: self.max_columns };
        loop {
            let next = if !started && sample.len() >= SAMPLE_OBJECTS { None } else { seq.next_element_seed(seed)? };
            match next {
                Some(object) if !started => {
                    columns.admit(&object, sample.len() as u64 + 1).map_err(fail)?;
                    sample.push(object);
                }
                _ if !started => {
                    started = true;
                    if columns.names.is_empty() {
                        return Ok(());
                    }
                    let header: Vec<&str> = columns.names.iter().map(String::as_str).collect();
                    self.sink.push(0, &header).map_err(fail)?;
                    for object in std::mem::take(&mut sample) {
                        position += 1;
                        self.sink.push(position, &columns.place(&object)).map_err(fail)?;
                    }
                }
                Some(object) => {
                    position += 1;
                    let first_new = columns.admit(&object, position).map_err(fail)?;
                    for name in columns.names.iter().skip(first_new) {
                        self.sink.add_column(name);
                    }
                    self.sink.push(position, &columns.place(&object)).map_err(fail)?;
                }
                None => return Ok(()),
            }
        }
    }
}

/// Streams the array in `reader` to `sink`: the header (position 0), then each object as a row.
pub(crate) fn read_json<R: Read>(reader: R, max_columns: usize, sink: &mut dyn TableSink) -> Result<(), ReportError> {
    let failure = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let result =
        Rows { sink, failure: &failure, max_columns }.deserialize(&mut deserializer).and_then(|()| deserializer.end());
    if let Some(error) = failure.into_inner() {
        return Err(error);
    }
    result.map_err(|source| match source.classify() {
        serde_json::error::Category::Io => ReportError::Read(std::io::Error::other(source)),
        serde_json::error::Category::Data => ReportError::NotTabular { reason: source.to_string() },
        _ => ReportError::InvalidJson { line: source.line() as u64, column: source.column() as u64, source },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and the rows, as given to the sink; a column added late is appended to the header.
    #[derive(Default)]
    struct Collected(Vec<Vec<String>>);

    impl TableSink for Collected {
        fn push(&mut self, _: u64, fields: &[&str]) -> Result<(), ReportError> {
            self.0.push(fields.iter().map(|field| (*field).to_owned()).collect());
            Ok(())
        }
        fn add_column(&mut self, name: &str) {
            if let Some(header) = self.0.first_mut() {
                header.push(name.to_owned());
            }
        }
    }

    fn read(data: &str, max_columns: usize) -> Result<Vec<Vec<String>>, ReportError> {
        let mut collected = Collected::default();
        read_json(data.as_bytes(), max_columns, &mut collected)?;
        Ok(collected.0)
    }

    #[test]
    fn one_object_with_5000_keys_is_counted_in_full() {
        let members: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
        let data = format!("[{{{}}}]", members.join(","));
        let error = read(&data, 200).unwrap_err();
        assert_eq!(error.code(), "too_many_columns");
        assert_eq!(
            error.to_string(),
            "object 1 of the JSON array has 5000 keys, more than the limit of 200 columns set by reports.max_columns"
        );
        assert_eq!(error.line(), None);
    }

    #[test]
    fn single_key_objects_with_301_distinct_keys_name_the_union() {
        let objects: Vec<String> = (0..300).map(|i| format!("{{\"k{i}\":{i}}}")).collect();
        let data = format!("[{{\"a\":1}},{}]", objects.join(","));
        let error = read(&data, 200).unwrap_err();
        assert_eq!(error.code(), "too_many_columns");
        assert_eq!(
            error.to_string(),
            "the first 201 objects of the JSON array have 201 distinct keys between them (each distinct key is a \
             column), more than the limit of 200 set by reports.max_columns"
        );
        assert_eq!(error.line(), None);
    }

    #[test]
    fn the_union_count_is_exact_when_one_object_adds_several_keys() {
        let error = read(r#"[{"a":1,"b":2},{"a":3,"c":4,"d":5,"e":6}]"#, 4).unwrap_err();
        assert!(matches!(error, ReportError::TooManyDistinctKeys { objects: 2, found: 5, limit: 4 }), "{error:?}");
    }

    /// A JSON array of `SAMPLE_OBJECTS` objects with the key `a`, then `tail` (which closes the array).
    fn after_the_sample(tail: &str) -> String {
        let mut data = String::from("[");
        for i in 0..SAMPLE_OBJECTS {
            data.push_str(&format!("{{\"a\":{i}}},"));
        }
        data.push_str(tail);
        data
    }

    #[test]
    fn a_wide_object_after_the_sample_is_rejected_not_truncated() {
        let data = after_the_sample(r#"{"a":1,"b":2,"c":3,"b":4}]"#);
        let error = read(&data, 2).unwrap_err();
        let object = SAMPLE_OBJECTS as u64 + 1;
        assert!(
            matches!(error, ReportError::TooManyKeys { object: o, found: 4, limit: 2 } if o == object),
            "{error:?}"
        );
    }

    #[test]
    fn values_are_kept_as_written_and_nested_ones_are_rejected() {
        let rows = read(r#"[{"a":19.90,"b":"x\"y","c":true,"d":null,"e":-1.5E+3,"f":"plain"}]"#, 10).unwrap();
        assert_eq!(rows.get(1).unwrap(), &["19.90", "x\"y", "true", "", "-1.5E+3", "plain"]);
        for nested in [r#"[{"a":{"b":1}}]"#, r#"[{"a":[1]}]"#] {
            let error = read(nested, 10).unwrap_err();
            assert_eq!(error.code(), "not_tabular");
            assert!(error.to_string().contains("(not a nested object or array) at line 1"), "{error}");
        }
    }

    #[test]
    fn a_key_first_seen_after_the_sample_adds_a_column() {
        let data = after_the_sample(r#"{"late":"x","a":1},{"a":2}]"#);
        let rows = read(&data, 2).unwrap();
        assert_eq!(rows.first().unwrap(), &["a", "late"]);
        assert_eq!(rows.get(SAMPLE_OBJECTS + 1).unwrap(), &["1", "x"]);
        assert_eq!(rows.last().unwrap(), &["2", ""]);
        let data = data.replace(r#"{"a":2}]"#, r#"{"a":2,"b":3}]"#);
        let error = read(&data, 2).unwrap_err();
        let objects = SAMPLE_OBJECTS as u64 + 2;
        assert!(
            matches!(error, ReportError::TooManyDistinctKeys { objects: o, found: 3, limit: 2 } if o == objects),
            "{error:?}"
        );
    }

    #[test]
    fn exactly_the_limit_of_distinct_keys_is_fine() {
        let objects: Vec<String> = (0..200).map(|i| format!("{{\"k{i}\":{i},\"k{i}\":{i}}}")).collect();
        let rows = read(&format!("[{}]", objects.join(",")), 200).unwrap();
        assert_eq!(rows.first().map(Vec::len), Some(200));
        assert_eq!(rows.len(), 201);
    }
}
