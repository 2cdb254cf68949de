//! Strict, bounded JSON decoding of the two wire formats straight into an `f32` buffer.
//!
//! The decoder never builds a JSON tree: numbers are streamed into a `Vec<f32>` whose length is capped at
//! `width × max_rows`, so an oversized tensor is refused before it is allocated. Problems are classified as
//! they are found (a string where a number belongs is `dtype_mismatch`, a 31st value in a 30-wide row is
//! `shape_mismatch`) and the first one wins. serde_json's own recursion limit (128) bounds the nesting of the
//! few places that accept arbitrary JSON (OIP v2 `parameters`).
//!
//! Finiteness is checked here, before any range check can be fooled by a NaN: JSON cannot carry NaN, and a
//! number too large for `f32` (or for `f64`) is `non_finite`.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use rampart_core::{GuardId, Reason, Rejection};

/// The most characters of a v2 request `id` that are echoed back.
pub const MAX_ECHO_ID: usize = 128;

/// Limits for one decode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Values per row (the model's input width).
    pub width: usize,
    /// Most rows in one request.
    pub max_rows: usize,
}

/// A decoded body: row-major values and the row count, not yet range-checked.
#[derive(Debug)]
pub struct Decoded {
    /// Row-major values, all finite.
    pub data: Vec<f32>,
    /// Rows.
    pub rows: usize,
    /// The v2 `id`.
    pub echo_id: Option<String>,
}

fn reject(reason: Reason, detail: impl Into<std::borrow::Cow<'static, str>>) -> Rejection {
    Rejection::new(reason, GuardId::VALIDATE).with_detail(detail)
}

/// The first problem found, kept outside serde's error type so its reason survives the unwinding.
struct Problem(RefCell<Option<Rejection>>);

impl Problem {
    fn set<E: de::Error>(&self, r: Rejection) -> E {
        let msg = r.detail.to_string();
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(r);
        }
        E::custom(msg)
    }

    fn finish(self, err: serde_json::Error) -> Rejection {
        if let Some(r) = self.0.into_inner() {
            return r;
        }
        // serde_json refuses numbers beyond f64's range itself; that is a finiteness problem, not bad syntax.
        if err.to_string().contains("number out of range") {
            return reject(Reason::NonFinite, "a number is too large");
        }
        match err.classify() {
            serde_json::error::Category::Eof => {
                reject(Reason::InvalidJson, "the JSON body ends early")
            }
            _ => reject(
                Reason::InvalidJson,
                "the body is not valid JSON for this endpoint",
            ),
        }
    }
}

/// Decodes `POST /v1/models/{name}/predict`: `{"features": [x, ...]}` (one row) or
/// `{"instances": [[x, ...], ...]}` (a batch). Unknown fields are refused.
///
/// # Errors
/// The first problem, as a 400 rejection.
pub fn decode_v1(body: &[u8], limits: Limits) -> Result<Decoded, Rejection> {
    let problem = Problem(RefCell::new(None));
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = V1Body {
        limits,
        problem: &problem,
    };
    match seed.deserialize(&mut de).and_then(|d| de.end().map(|()| d)) {
        Ok(d) => Ok(d),
        Err(e) => Err(problem.finish(e)),
    }
}

/// Decodes OIP v2 `POST /v2/models/{name}/infer`: exactly one input tensor named `input_name`, datatype a
/// numeric one, shape `[rows, width]` (or `[width]`), data flat or nested, element count equal to the shape's.
///
/// # Errors
/// The first problem, as a 400 rejection.
pub fn decode_v2(body: &[u8], limits: Limits, input_name: &str) -> Result<Decoded, Rejection> {
    let problem = Problem(RefCell::new(None));
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = V2Body {
        limits,
        input_name,
        problem: &problem,
    };
    match seed.deserialize(&mut de).and_then(|d| de.end().map(|()| d)) {
        Ok(d) => Ok(d),
        Err(e) => Err(problem.finish(e)),
    }
}

fn number_to_f32<E: de::Error>(v: f64, problem: &Problem) -> Result<f32, E> {
    if !v.is_finite() {
        return Err(problem.set(reject(Reason::NonFinite, "a value is not finite")));
    }
    let x = v as f32;
    if !x.is_finite() {
        return Err(problem.set(reject(
            Reason::NonFinite,
            "a value is too large for float32",
        )));
    }
    Ok(x)
}

/// One number, anything else classified.
struct Number<'p> {
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for Number<'_> {
    type Value = f32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f32, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Number<'_> {
    type Value = f32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f32, E> {
        number_to_f32(v, self.problem)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f32, E> {
        number_to_f32(v as f64, self.problem)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f32, E> {
        number_to_f32(v as f64, self.problem)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<f32, E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a value is a string, not a number",
        )))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<f32, E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a value is a boolean, not a number",
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f32, E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a value is null, not a number",
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<f32, A::Error> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a value is an object, not a number",
        )))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<f32, A::Error> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "a row holds a nested array where a number belongs",
        )))
    }
}

/// One row of exactly `width` numbers, appended to `out`.
struct Row<'a> {
    width: usize,
    out: &'a mut Vec<f32>,
    problem: &'a Problem,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(v) = seq.next_element_seed(Number {
            problem: self.problem,
        })? {
            if n == self.width {
                return Err(self.problem.set(width_error(self.width)));
            }
            self.out.push(v);
            n += 1;
        }
        if n != self.width {
            return Err(self.problem.set(width_error(self.width)));
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a row must be an array of numbers",
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "a row must be an array of numbers",
        )))
    }
}

fn width_error(width: usize) -> Rejection {
    reject(
        Reason::ShapeMismatch,
        format!("each row must hold exactly {width} numbers"),
    )
}

fn batch_error(max_rows: usize) -> Rejection {
    reject(
        Reason::ShapeMismatch,
        format!("a request may hold at most {max_rows} rows"),
    )
}

/// `[[...], ...]`: rows until `max_rows`.
struct Rows<'a> {
    limits: Limits,
    out: &'a mut Vec<f32>,
    problem: &'a Problem,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut rows = 0usize;
        loop {
            if rows == self.limits.max_rows {
                // One more element would exceed the batch limit: refuse without reading it.
                return match seq.next_element::<IgnoredAny>()? {
                    Some(_) => Err(self.problem.set(batch_error(self.limits.max_rows))),
                    None => Ok(rows),
                };
            }
            let row = Row {
                width: self.limits.width,
                out: self.out,
                problem: self.problem,
            };
            match seq.next_element_seed(row)? {
                Some(()) => rows += 1,
                None => break,
            }
        }
        if rows == 0 {
            return Err(self.problem.set(reject(Reason::ShapeMismatch, "no rows")));
        }
        Ok(rows)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<usize, A::Error> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "`instances` must be an array of rows",
        )))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<usize, E> {
        Err(self.problem.set(reject(
            Reason::ShapeMismatch,
            "`instances` must be an array of rows",
        )))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<usize, E> {
        Err(self.problem.set(reject(
            Reason::DtypeMismatch,
            "`instances` must be an array of rows",
        )))
    }
}

struct V1Body<'p> {
    limits: Limits,
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for V1Body<'_> {
    type Value = Decoded;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decoded, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V1Body<'_> {
    type Value = Decoded;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with `features` or `instances`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        let mut data: Vec<f32> = Vec::new();
        let mut rows: Option<usize> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if rows.is_some() && (key == "features" || key == "instances") {
                return Err(self.problem.set(reject(
                    Reason::InvalidJson,
                    "give either `features` or `instances`, once",
                )));
            }
            match &*key {
                "features" => {
                    data.reserve_exact(self.limits.width);
                    map.next_value_seed(Row {
                        width: self.limits.width,
                        out: &mut data,
                        problem: self.problem,
                    })?;
                    rows = Some(1);
                }
                "instances" => {
                    data.reserve(self.limits.width.saturating_mul(4));
                    let n = map.next_value_seed(Rows {
                        limits: self.limits,
                        out: &mut data,
                        problem: self.problem,
                    })?;
                    rows = Some(n);
                }
                _ => {
                    return Err(self.problem.set(reject(
                        Reason::InvalidJson,
                        "unknown field; expected `features` or `instances`",
                    )))
                }
            }
        }
        match rows {
            Some(rows) => Ok(Decoded {
                data,
                rows,
                echo_id: None,
            }),
            None => Err(self.problem.set(reject(
                Reason::MissingField,
                "`features` (one row) or `instances` (a batch) is required",
            ))),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Decoded, A::Error> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Decoded, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            "the body must be a JSON object",
        )))
    }
}

/// OIP v2 tensor data: flat or nested arrays of numbers, flattened into `out` up to `cap` values.
struct Flat<'a> {
    cap: usize,
    depth: usize,
    out: &'a mut Vec<f32>,
    problem: &'a Problem,
}

/// Tensors here are at most 2-D; a little slack for `[[[x]]]`-style clients, no more.
const MAX_DATA_DEPTH: usize = 3;

impl<'de> DeserializeSeed<'de> for Flat<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flat<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DATA_DEPTH {
            return Err(self.problem.set(reject(
                Reason::ShapeMismatch,
                "tensor data is nested too deeply",
            )));
        }
        loop {
            let inner = Flat {
                cap: self.cap,
                depth: self.depth + 1,
                out: self.out,
                problem: self.problem,
            };
            if seq.next_element_seed(inner)?.is_none() {
                return Ok(());
            }
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let x = number_to_f32(v, self.problem)?;
        self.push(x)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let x = number_to_f32(v as f64, self.problem)?;
        self.push(x)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let x = number_to_f32(v as f64, self.problem)?;
        self.push(x)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self
            .problem
            .set(reject(Reason::DtypeMismatch, "tensor data holds a string")))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self
            .problem
            .set(reject(Reason::DtypeMismatch, "tensor data holds a boolean")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self
            .problem
            .set(reject(Reason::DtypeMismatch, "tensor data holds null")))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self
            .problem
            .set(reject(Reason::DtypeMismatch, "tensor data holds an object")))
    }
}

impl Flat<'_> {
    fn push<E: de::Error>(self, v: f32) -> Result<(), E> {
        if self.out.len() >= self.cap {
            return Err(self.problem.set(reject(
                Reason::ShapeMismatch,
                "tensor data holds more values than a request may",
            )));
        }
        self.out.push(v);
        Ok(())
    }
}

/// `[d0, d1, ...]` of non-negative integers, at most 4 of them.
struct Shape<'p> {
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for Shape<'_> {
    type Value = Vec<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape<'_> {
    type Value = Vec<u64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shape")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
        let mut dims = Vec::with_capacity(2);
        while let Some(d) = seq.next_element::<serde_json::Value>()? {
            let Some(d) = d.as_u64() else {
                return Err(self.problem.set(reject(
                    Reason::ShapeMismatch,
                    "`shape` must hold non-negative integers",
                )));
            };
            if dims.len() == 4 {
                return Err(self.problem.set(reject(
                    Reason::ShapeMismatch,
                    "`shape` has too many dimensions",
                )));
            }
            dims.push(d);
        }
        Ok(dims)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<u64>, A::Error> {
        Err(self
            .problem
            .set(reject(Reason::ShapeMismatch, "`shape` must be an array")))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<u64>, E> {
        Err(self
            .problem
            .set(reject(Reason::ShapeMismatch, "`shape` must be an array")))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<u64>, E> {
        Err(self
            .problem
            .set(reject(Reason::ShapeMismatch, "`shape` must be an array")))
    }
}

/// A bounded string (names, datatypes, ids): longer ones are refused, never copied whole.
struct ShortString<'p> {
    max: usize,
    what: &'static str,
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for ShortString<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShortString<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.len() > self.max {
            return Err(self.problem.set(reject(
                Reason::InvalidJson,
                format!("`{}` is too long", self.what),
            )));
        }
        Ok(v.to_owned())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.problem.set(reject(
            Reason::InvalidJson,
            format!("`{}` must be a string", self.what),
        )))
    }
}

/// The datatypes whose values are plain JSON numbers the model's `f32` input can take.
const NUMERIC_DATATYPES: &[&str] = &[
    "FP16", "FP32", "FP64", "BF16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
    "UINT64",
];

struct V2Body<'p> {
    limits: Limits,
    input_name: &'p str,
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for V2Body<'_> {
    type Value = Decoded;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decoded, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V2Body<'_> {
    type Value = Decoded;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inference request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        let mut echo_id = None;
        let mut tensor: Option<(Vec<u64>, Vec<f32>)> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "id" => {
                    echo_id = Some(map.next_value_seed(ShortString {
                        max: MAX_ECHO_ID,
                        what: "id",
                        problem: self.problem,
                    })?);
                }
                "inputs" => {
                    if tensor.is_some() {
                        return Err(self
                            .problem
                            .set(reject(Reason::InvalidJson, "`inputs` given twice")));
                    }
                    tensor = Some(map.next_value_seed(Inputs {
                        limits: self.limits,
                        input_name: self.input_name,
                        problem: self.problem,
                    })?);
                }
                "parameters" | "outputs" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    return Err(self.problem.set(reject(
                        Reason::InvalidJson,
                        "unknown field; expected `id`, `inputs`, `outputs` or `parameters`",
                    )))
                }
            }
        }
        let Some((shape, data)) = tensor else {
            return Err(self
                .problem
                .set(reject(Reason::MissingField, "`inputs` is required")));
        };
        let rows = check_shape(&shape, data.len(), self.limits).map_err(|r| self.problem.set(r))?;
        Ok(Decoded {
            data,
            rows,
            echo_id,
        })
    }
}

/// Triton once let a tensor whose data did not match its declared shape bleed into another request: the
/// element count is checked against the shape before anything else touches the data.
fn check_shape(shape: &[u64], len: usize, limits: Limits) -> Result<usize, Rejection> {
    let width = limits.width as u64;
    let rows = match shape {
        [w] if *w == width => 1,
        [n, w] if *w == width => *n,
        _ => {
            return Err(reject(
                Reason::ShapeMismatch,
                format!("`shape` must be [rows, {}]", limits.width),
            ))
        }
    };
    if rows == 0 {
        return Err(reject(Reason::ShapeMismatch, "no rows"));
    }
    if rows > limits.max_rows as u64 {
        return Err(batch_error(limits.max_rows));
    }
    let expected = rows.saturating_mul(width);
    if expected != len as u64 {
        return Err(reject(
            Reason::ShapeMismatch,
            "the number of values in `data` does not match `shape`",
        ));
    }
    usize::try_from(rows).map_err(|_| batch_error(limits.max_rows))
}

struct Inputs<'p> {
    limits: Limits,
    input_name: &'p str,
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for Inputs<'_> {
    type Value = (Vec<u64>, Vec<f32>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Inputs<'_> {
    type Value = (Vec<u64>, Vec<f32>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of input tensors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let tensor = seq.next_element_seed(Tensor {
            limits: self.limits,
            input_name: self.input_name,
            problem: self.problem,
        })?;
        let Some(tensor) = tensor else {
            return Err(self
                .problem
                .set(reject(Reason::MissingField, "`inputs` is empty")));
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(self.problem.set(reject(
                Reason::ShapeMismatch,
                "this model takes exactly one input tensor",
            )));
        }
        Ok(tensor)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self
            .problem
            .set(reject(Reason::InvalidJson, "`inputs` must be an array")))
    }
}

struct Tensor<'p> {
    limits: Limits,
    input_name: &'p str,
    problem: &'p Problem,
}

impl<'de> DeserializeSeed<'de> for Tensor<'_> {
    type Value = (Vec<u64>, Vec<f32>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tensor<'_> {
    type Value = (Vec<u64>, Vec<f32>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input tensor object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        let mut shape = None;
        let mut datatype = None;
        let mut data: Option<Vec<f32>> = None;
        let cap = self.limits.width.saturating_mul(self.limits.max_rows);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "name" => {
                    name = Some(map.next_value_seed(ShortString {
                        max: 256,
                        what: "name",
                        problem: self.problem,
                    })?)
                }
                "shape" => {
                    shape = Some(map.next_value_seed(Shape {
                        problem: self.problem,
                    })?)
                }
                "datatype" => {
                    datatype = Some(map.next_value_seed(ShortString {
                        max: 16,
                        what: "datatype",
                        problem: self.problem,
                    })?)
                }
                "data" => {
                    let mut out = Vec::with_capacity(self.limits.width);
                    map.next_value_seed(Flat {
                        cap,
                        depth: 0,
                        out: &mut out,
                        problem: self.problem,
                    })?;
                    data = Some(out);
                }
                "parameters" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    return Err(self.problem.set(reject(
                        Reason::InvalidJson,
                        "unknown field in an input tensor",
                    )))
                }
            }
        }
        let missing = |what: &'static str| {
            reject(
                Reason::MissingField,
                format!("the input tensor needs `{what}`"),
            )
        };
        let name = name.ok_or_else(|| self.problem.set(missing("name")))?;
        let shape = shape.ok_or_else(|| self.problem.set(missing("shape")))?;
        let datatype = datatype.ok_or_else(|| self.problem.set(missing("datatype")))?;
        let data = data.ok_or_else(|| self.problem.set(missing("data")))?;
        if name != self.input_name {
            return Err(self.problem.set(reject(
                Reason::MissingField,
                "no input tensor has the model's input name (see GET /v2/models/{name})",
            )));
        }
        if !NUMERIC_DATATYPES.contains(&datatype.as_str()) {
            return Err(self.problem.set(reject(
                Reason::DtypeMismatch,
                "`datatype` must be a numeric type such as FP32",
            )));
        }
        Ok((shape, data))
    }
}

#[cfg(test)]
mod tests;
