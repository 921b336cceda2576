//! A JSON string borrowed from the input whenever it can be: the string
//! type of every struct the audit and pod parsers deserialise into.
//!
//! serde borrows a `Cow<'a, str>` only when a field's type is spelled
//! exactly `Cow<'a, str>` with `#[serde(borrow)]`: through an alias, or
//! inside an `Option`, a `Vec` or a map, it always allocates an owned copy.
//! [`Str`] borrows in all of those places, which is most strings of an
//! audit line (an escape, rare in the fields read, still makes a copy).

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// A string of the input, borrowed unless it held an escape.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<'a>(Cow<'a, str>);

impl<'a> Str<'a> {
    /// The string as an owned `String` (no copy if it was owned already).
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Self(Cow::Borrowed(s))
    }
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Str(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn strings_borrow_everywhere_unless_escaped() {
        let doc = r#"{"a":"plain","b":["x","y\"z"],"c":{"k":"v"},"d":null}"#;
        #[derive(serde::Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            a: Option<Str<'a>>,
            #[serde(borrow)]
            b: Vec<Str<'a>>,
            #[serde(borrow)]
            c: std::collections::BTreeMap<Str<'a>, Str<'a>>,
            #[serde(borrow)]
            d: Option<Str<'a>>,
        }
        let d: Doc<'_> = serde_json::from_str(doc).unwrap();
        let a = d.a.unwrap();
        assert!(matches!(a.0, Cow::Borrowed("plain")));
        assert!(matches!(d.b[0].0, Cow::Borrowed("x")));
        assert!(matches!(&d.b[1].0, Cow::Owned(s) if s == "y\"z"));
        assert!(matches!(d.c.get("k").unwrap().0, Cow::Borrowed("v")));
        assert!(d.d.is_none());
        let err = serde_json::from_str::<Str<'_>>("1").err().unwrap();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
