//! Reading a JSON array of flat objects as rows, streaming: one object at a time.
//!
//! Columns are the keys of the first objects (up to [`SAMPLE_OBJECTS`]), in order of first appearance; a key
//! missing from an object is an empty cell; a key first seen later is an error (`not_tabular`). Values must be
//! strings, numbers, booleans or null; a nested object or array is an error. Errors name the object's position
//! in the array where a CSV error would name a line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::ReportError;

/// How many objects decide the columns.
pub(crate) const SAMPLE_OBJECTS: usize = 1000;

/// One flat object: its keys and values as text, in order.
#[derive(Debug, Default)]
pub(crate) struct FlatObject(pub Vec<(String, String)>);

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null (not a nested object or array)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar(String::new()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar(String::new()))
    }
}

impl<'de> Deserialize<'de> for FlatObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FlatObjectVisitor)
    }
}

struct FlatObjectVisitor;

impl<'de> Visitor<'de> for FlatObjectVisitor {
    type Value = FlatObject;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatObject, A::Error> {
        let mut fields: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let Scalar(value) = map.next_value()?;
            match fields.iter_mut().find(|(existing, _)| *existing == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key, value)),
            }
        }
        Ok(FlatObject(fields))
    }
}

/// Receives the header, then each row, with its position (1-based; the header is 0 for JSON).
pub(crate) type RowSink<'s> = dyn FnMut(u64, &[&str]) -> Result<(), ReportError> + 's;

struct Rows<'s, 'f> {
    sink: &'s mut RowSink<'f>,
    failure: &'s RefCell<Option<ReportError>>,
    max_columns: usize,
}

impl<'de> DeserializeSeed<'de> for Rows<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_> {
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
        let mut columns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut position: u64 = 0;
        let mut started = false;
        loop {
            let next =
                if !started && sample.len() >= SAMPLE_OBJECTS { None } else { seq.next_element::<FlatObject>()? };
            match next {
                Some(object) if !started => {
                    for (key, _) in &object.0 {
                        if !index.contains_key(key) {
                            if columns.len() >= self.max_columns {
                                return Err(fail(ReportError::TooManyColumns {
                                    line: sample.len() as u64 + 1,
                                    found: columns.len() + 1,
                                    limit: self.max_columns,
                                }));
                            }
                            index.insert(key.clone(), columns.len());
                            columns.push(key.clone());
                        }
                    }
                    sample.push(object);
                }
                _ if !started => {
                    started = true;
                    if columns.is_empty() {
                        return Ok(());
                    }
                    let header: Vec<&str> = columns.iter().map(String::as_str).collect();
                    (self.sink)(0, &header).map_err(fail)?;
                    for object in std::mem::take(&mut sample) {
                        position += 1;
                        let row = place(&object, &index, columns.len(), position).map_err(fail)?;
                        (self.sink)(position, &row).map_err(fail)?;
                    }
                }
                Some(object) => {
                    position += 1;
                    let row = place(&object, &index, columns.len(), position).map_err(fail)?;
                    (self.sink)(position, &row).map_err(fail)?;
                }
                None => return Ok(()),
            }
        }
    }
}

/// The object's values in column order.
fn place<'o>(
    object: &'o FlatObject,
    index: &HashMap<String, usize>,
    width: usize,
    position: u64,
) -> Result<Vec<&'o str>, ReportError> {
    let mut row = vec![""; width];
    for (key, value) in &object.0 {
        let slot = index.get(key).and_then(|&at| row.get_mut(at)).ok_or_else(|| ReportError::NotTabular {
            reason: format!(
                "object {position} has the key {key:?}, which none of the first {SAMPLE_OBJECTS} objects has"
            ),
        })?;
        *slot = value.as_str();
    }
    Ok(row)
}

/// Streams the array in `reader` to `sink`: the header (position 0), then each object as a row.
pub(crate) fn read_json<R: Read>(reader: R, max_columns: usize, sink: &mut RowSink<'_>) -> Result<(), ReportError> {
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
