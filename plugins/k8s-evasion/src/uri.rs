//! The query parameters of an audit event's request URI
//! (`/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&tty=true`).

/// Every `name=value` of the query, decoded (`%XX`, and `+` as a space, as
/// Go's `url.Values` encodes them), in order.
pub(crate) fn query(uri: &str) -> Vec<(String, String)> {
    let Some((_, query)) = uri.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The values of one parameter.
pub(crate) fn values<'q>(query: &'q [(String, String)], name: &str) -> Vec<&'q str> {
    query
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_repeated_parameters() {
        let q = query(
            "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat+%2Fetc%2Fshadow&container=app&stdin=true&tty=true",
        );
        assert_eq!(values(&q, "command"), ["sh", "-c", "cat /etc/shadow"]);
        assert_eq!(values(&q, "container"), ["app"]);
        assert_eq!(values(&q, "tty"), ["true"]);
        assert!(values(&q, "ports").is_empty());
        assert!(query("/api/v1/pods").is_empty());
        assert_eq!(values(&query("/x?a=%zz&b=%4"), "a"), ["%zz"]);
        assert_eq!(values(&query("/x?a=%zz&b=%4"), "b"), ["%4"]);
        assert_eq!(values(&query("/x?flag"), "flag"), [""]);
    }
}
