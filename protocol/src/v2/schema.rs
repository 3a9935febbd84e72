//! Entity schemas: what fields each entity kind has, of which type, and how numbers are
//! quantized. A game declares its schema once; the server normalizes every value it stores
//! through it (so the state *is* quantized, not only the wire), and protocol version 2 sends it
//! in every snapshot so a client can decode field indices and packed values.
//!
//! A value's packed form depends only on its declared type ([`FieldType`]); quantized numbers
//! travel as grid indices ([`Quantization`]). Undeclared fields travel by name, as `any`.

use super::bits::{BitError, BitReader, BitWriter};
use super::quantization::Quantization;
use crate::codec::MAX_DEPTH;
use rmpv::Value;

/// Most fields a kind may declare: a changed-field mask is one `u64`.
pub const MAX_FIELDS: usize = 64;

/// Why a schema is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// A quantization whose range or step cannot be represented exactly.
    #[error("quantization [{min}, {max}] step {step} is invalid: {reason}")]
    InvalidQuantization {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Step.
        step: f64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two kinds share a name.
    #[error("entity kind `{0}` is declared twice")]
    DuplicateKind(String),
    /// Two fields of a kind share a name.
    #[error("field `{field}` of kind `{kind}` is declared twice")]
    DuplicateField {
        /// The kind.
        kind: String,
        /// The field.
        field: String,
    },
    /// More than [`MAX_FIELDS`] fields.
    #[error("kind `{kind}` declares {count} fields, more than 64")]
    TooManyFields {
        /// The kind.
        kind: String,
        /// How many it declares.
        count: usize,
    },
    /// A schema received on the wire does not have the documented shape.
    #[error("malformed schema: {0}")]
    Malformed(&'static str),
}

/// A value that does not fit the type its field declares.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("value {value} does not fit a field of type {expected}")]
pub struct TypeMismatch {
    /// The declared type's wire name.
    pub expected: &'static str,
    /// The offending value.
    pub value: Value,
}

/// The type of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    /// `true`/`false`; 1 bit.
    Bool,
    /// An unsigned integer; a `varu`.
    UInt,
    /// A signed integer; zigzag-mapped, then a `varu`.
    Int,
    /// A UTF-8 string; byte length as a `varu`, then the bytes.
    Str,
    /// A float32, unquantized; 32 bits.
    F32,
    /// A quantized number, stored as float32; [`Quantization::bits`] bits.
    Quantized(Quantization),
    /// Any MessagePack value (arrays, maps, nil, ...); its MessagePack bytes as a byte string.
    Any,
}

impl FieldType {
    /// The type's name in a schema on the wire.
    pub fn wire_name(&self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::UInt => "uint",
            Self::Int => "int",
            Self::Str => "str",
            Self::F32 => "f32",
            Self::Quantized(_) => "quantized",
            Self::Any => "any",
        }
    }

    /// The value the server stores for `value`: quantized numbers snapped to their grid,
    /// integers and floats in their canonical MessagePack form.
    pub fn normalize(&self, value: Value) -> Result<Value, TypeMismatch> {
        let normalized = match (self, &value) {
            (Self::Any, _) => return Ok(value),
            (Self::Bool, Value::Boolean(_)) => Some(value.clone()),
            (Self::Str, Value::String(text)) if text.is_str() => Some(value.clone()),
            (Self::UInt, _) => value.as_u64().map(Value::from),
            (Self::Int, _) => value.as_i64().map(Value::from),
            (Self::F32, _) => number(&value).map(|x| Value::F32(x as f32)),
            (Self::Quantized(quantization), _) => {
                number(&value).map(|x| Value::F32(quantization.snap(x)))
            }
            _ => None,
        };
        normalized.ok_or(TypeMismatch {
            expected: self.wire_name(),
            value,
        })
    }

    /// Packs a normalized value.
    pub(crate) fn write(&self, writer: &mut BitWriter, value: &Value) -> Result<(), TypeMismatch> {
        let mismatch = || TypeMismatch {
            expected: self.wire_name(),
            value: value.clone(),
        };
        match self {
            Self::Bool => writer.write_bool(value.as_bool().ok_or_else(mismatch)?),
            Self::UInt => writer.write_varu(value.as_u64().ok_or_else(mismatch)?),
            Self::Int => {
                let number = value.as_i64().ok_or_else(mismatch)?;
                writer.write_varu(((number << 1) ^ (number >> 63)) as u64);
            }
            Self::Str => writer.write_bytes(value.as_str().ok_or_else(mismatch)?.as_bytes()),
            Self::F32 => match value {
                Value::F32(x) => writer.write_bits(u64::from(x.to_bits()), 32),
                _ => return Err(mismatch()),
            },
            Self::Quantized(quantization) => match value {
                Value::F32(x) => {
                    writer.write_bits(quantization.index_of(f64::from(*x)), quantization.bits())
                }
                _ => return Err(mismatch()),
            },
            Self::Any => {
                let mut bytes = Vec::new();
                // expect: writing into a Vec cannot fail.
                rmpv::encode::write_value(&mut bytes, value).expect("writing into a Vec");
                writer.write_bytes(&bytes);
            }
        }
        Ok(())
    }

    /// Unpacks a value, in its normalized form.
    pub(crate) fn read(&self, reader: &mut BitReader<'_>) -> Result<Value, FieldError> {
        Ok(match self {
            Self::Bool => Value::from(reader.read_bool()?),
            Self::UInt => Value::from(reader.read_varu()?),
            Self::Int => {
                let zigzag = reader.read_varu()?;
                Value::from(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
            }
            Self::Str => {
                let bytes = reader.read_bytes()?;
                Value::from(String::from_utf8(bytes).map_err(|_| FieldError::InvalidUtf8)?)
            }
            Self::F32 => Value::F32(f32::from_bits(reader.read_bits(32)? as u32)),
            Self::Quantized(quantization) => {
                let index = reader.read_bits(quantization.bits())?;
                if index > quantization.steps {
                    return Err(FieldError::Bits(BitError::OutOfRange(index)));
                }
                Value::F32(quantization.value_of(index))
            }
            Self::Any => {
                let bytes = reader.read_bytes()?;
                let mut slice = bytes.as_slice();
                let value = rmpv::decode::read_value_with_max_depth(&mut slice, MAX_DEPTH)
                    .map_err(|_| FieldError::InvalidValue)?;
                if !slice.is_empty() {
                    return Err(FieldError::InvalidValue);
                }
                value
            }
        })
    }

    fn to_wire(self, name: &str) -> Value {
        let mut entry = vec![Value::from(name), Value::from(self.wire_name())];
        if let Self::Quantized(quantization) = self {
            entry.extend([
                Value::F64(quantization.min),
                Value::F64(quantization.step),
                Value::from(quantization.steps),
            ]);
        }
        Value::Array(entry)
    }

    fn from_wire(entry: &[Value]) -> Result<Self, SchemaError> {
        let malformed = SchemaError::Malformed("unknown field type");
        Ok(match entry {
            [Value::String(name)] => match name.as_str() {
                Some("bool") => Self::Bool,
                Some("uint") => Self::UInt,
                Some("int") => Self::Int,
                Some("str") => Self::Str,
                Some("f32") => Self::F32,
                Some("any") => Self::Any,
                _ => return Err(malformed),
            },
            [Value::String(name), min, step, steps] if name.as_str() == Some("quantized") => {
                let (Some(min), Some(step), Some(steps)) =
                    (min.as_f64(), step.as_f64(), steps.as_u64())
                else {
                    return Err(SchemaError::Malformed(
                        "quantized needs min, step and steps",
                    ));
                };
                Self::Quantized(Quantization::from_steps(min, step, steps)?)
            }
            _ => return Err(malformed),
        })
    }
}

/// Why a packed value cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The bits themselves.
    #[error(transparent)]
    Bits(#[from] BitError),
    /// A `str` that is not UTF-8.
    #[error("packed string is not UTF-8")]
    InvalidUtf8,
    /// An `any` that is not one whole MessagePack value.
    #[error("packed value is not one MessagePack value")]
    InvalidValue,
}

fn number(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_i64().map(|n| n as f64))
        .or_else(|| value.as_u64().map(|n| n as f64))
}

/// One declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSchema {
    /// Its name, as in version 1 and in the snapshot's field maps.
    pub name: String,
    /// Its type.
    pub ty: FieldType,
}

/// The fields of one entity kind, in index order.
#[derive(Debug, Clone, PartialEq)]
pub struct KindSchema {
    /// The kind's name (`player`).
    pub name: String,
    /// Its fields; a field's index is its position here.
    pub fields: Vec<FieldSchema>,
}

impl KindSchema {
    /// The index and declaration of field `name`.
    pub fn field(&self, name: &str) -> Option<(usize, &FieldSchema)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, field)| field.name == name)
    }
}

/// Every declared kind of a game. Kinds a game does not declare still work: their fields travel
/// by name as `any` values (see PROTOCOL.md §19), only less compactly.
///
/// ```
/// use ludus_protocol::v2::{FieldType, Quantization, Schema};
/// let position = FieldType::Quantized(Quantization::new(0.0, 1000.0, 0.05).unwrap());
/// let schema = Schema::new()
///     .with_kind("coin", [("x", position), ("y", position)])
///     .unwrap();
/// assert_eq!(schema.kind("coin").unwrap().1.fields.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    kinds: Vec<KindSchema>,
}

impl Schema {
    /// An empty schema: every kind undeclared.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind with its fields in index order.
    pub fn with_kind<'a>(
        mut self,
        name: &str,
        fields: impl IntoIterator<Item = (&'a str, FieldType)>,
    ) -> Result<Self, SchemaError> {
        let kind = KindSchema {
            name: name.to_owned(),
            fields: fields
                .into_iter()
                .map(|(name, ty)| FieldSchema {
                    name: name.to_owned(),
                    ty,
                })
                .collect(),
        };
        self.push(kind)?;
        Ok(self)
    }

    fn push(&mut self, kind: KindSchema) -> Result<(), SchemaError> {
        if self.kind(&kind.name).is_some() {
            return Err(SchemaError::DuplicateKind(kind.name));
        }
        if kind.fields.len() > MAX_FIELDS {
            return Err(SchemaError::TooManyFields {
                count: kind.fields.len(),
                kind: kind.name,
            });
        }
        for (index, field) in kind.fields.iter().enumerate() {
            if kind.fields[..index]
                .iter()
                .any(|other| other.name == field.name)
            {
                return Err(SchemaError::DuplicateField {
                    kind: kind.name.clone(),
                    field: field.name.clone(),
                });
            }
        }
        self.kinds.push(kind);
        Ok(())
    }

    /// The index and declaration of kind `name`.
    pub fn kind(&self, name: &str) -> Option<(usize, &KindSchema)> {
        self.kinds
            .iter()
            .enumerate()
            .find(|(_, kind)| kind.name == name)
    }

    /// The kind at `index`.
    pub fn kind_at(&self, index: usize) -> Option<&KindSchema> {
        self.kinds.get(index)
    }

    /// The value to store for field `field` of an entity of `kind`: normalized when declared,
    /// as given otherwise.
    pub fn normalize(&self, kind: &str, field: &str, value: Value) -> Result<Value, TypeMismatch> {
        match self.kind(kind).and_then(|(_, kind)| kind.field(field)) {
            Some((_, declared)) => declared.ty.normalize(value),
            None => Ok(value),
        }
    }

    /// The schema as sent in a version 2 snapshot (see PROTOCOL.md §19).
    pub fn to_wire(&self) -> Value {
        Value::Array(
            self.kinds
                .iter()
                .map(|kind| {
                    let fields = kind
                        .fields
                        .iter()
                        .map(|field| field.ty.to_wire(&field.name));
                    Value::Array(vec![
                        Value::from(kind.name.as_str()),
                        Value::Array(fields.collect()),
                    ])
                })
                .collect(),
        )
    }

    /// Reads a schema sent by a server, refusing anything malformed.
    pub fn from_wire(value: &Value) -> Result<Self, SchemaError> {
        let kinds = value
            .as_array()
            .ok_or(SchemaError::Malformed("not an array"))?;
        let mut schema = Self::new();
        for kind in kinds {
            let [name, fields] = kind.as_array().map(Vec::as_slice).unwrap_or_default() else {
                return Err(SchemaError::Malformed("a kind is not [name, fields]"));
            };
            let (Some(name), Some(fields)) = (name.as_str(), fields.as_array()) else {
                return Err(SchemaError::Malformed("a kind is not [name, fields]"));
            };
            let fields = fields
                .iter()
                .map(|field| match field.as_array().map(Vec::as_slice) {
                    Some([Value::String(name), ty @ ..]) => Ok(FieldSchema {
                        name: name
                            .as_str()
                            .ok_or(SchemaError::Malformed("field name"))?
                            .to_owned(),
                        ty: FieldType::from_wire(ty)?,
                    }),
                    _ => Err(SchemaError::Malformed("a field is not [name, type, ...]")),
                })
                .collect::<Result<_, _>>()?;
            schema.push(KindSchema {
                name: name.to_owned(),
                fields,
            })?;
        }
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Quantization {
        Quantization::new(0.0, 1000.0, 0.05).expect("valid")
    }

    #[test]
    fn normalize_converts_numbers_and_refuses_other_types() {
        let ty = FieldType::Quantized(position());
        assert_eq!(ty.normalize(Value::from(3u8)), Ok(Value::F32(3.0)));
        assert!(FieldType::UInt.normalize(Value::from(-1)).is_err());
        assert!(FieldType::Str.normalize(Value::from(1)).is_err());
        assert_eq!(
            FieldType::Bool.normalize(Value::from(true)),
            Ok(Value::from(true))
        );
    }

    #[test]
    fn duplicate_fields_are_refused() {
        let refused = Schema::new().with_kind("a", [("x", FieldType::Bool), ("x", FieldType::Int)]);
        assert!(matches!(refused, Err(SchemaError::DuplicateField { .. })));
    }

    #[test]
    fn schema_round_trips_through_the_wire_form() {
        let schema = Schema::new()
            .with_kind(
                "player",
                [
                    ("x", FieldType::Quantized(position())),
                    ("name", FieldType::Str),
                ],
            )
            .and_then(|schema| schema.with_kind("board", [("cells", FieldType::Any)]))
            .expect("valid");
        assert_eq!(Schema::from_wire(&schema.to_wire()), Ok(schema));
    }

    #[test]
    fn values_round_trip_through_their_packed_form() {
        let cases = [
            (FieldType::Bool, Value::from(true)),
            (FieldType::UInt, Value::from(u64::MAX)),
            (FieldType::Int, Value::from(i64::MIN)),
            (FieldType::Str, Value::from("ann")),
            (FieldType::F32, Value::F32(-1.5)),
            (
                FieldType::Quantized(position()),
                Value::F32(position().snap(12.34)),
            ),
            (
                FieldType::Any,
                Value::Array(vec![Value::Nil, Value::from(2)]),
            ),
        ];
        for (ty, value) in cases {
            let mut writer = BitWriter::default();
            ty.write(&mut writer, &value).expect("normalized value");
            let bytes = writer.finish();
            assert_eq!(ty.read(&mut BitReader::new(&bytes)), Ok(value));
        }
    }
}
