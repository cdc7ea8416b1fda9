//! A client that calls a plugin the way Argo CD's ApplicationSet controller
//! does (`applicationset/services/plugin` and `services/internal/http` in
//! Argo CD): same headers, same body encoding, same reading of the reply.
//! It is written from the controller's behaviour, not from the plugin's code.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::tls::Stream;
use plugin_server::testing::{Response, read_response};
use serde_json::{Map, Value, json};

pub const GET_PARAMS_PATH: &str = "/api/v1/getparams.execute";

/// The controller's client: one keep-alive connection, like Go's transport.
pub struct Controller {
    addr: SocketAddr,
    token: String,
    /// HTTPS, trusting what this trusts.
    tls: Option<Arc<ClientConfig>>,
    connection: Option<BufReader<Box<dyn Stream>>>,
}

impl Controller {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Self {
            addr,
            token: token.to_owned(),
            tls: None,
            connection: None,
        }
    }

    /// The controller of a `https://` baseUrl.
    pub fn https(addr: SocketAddr, token: &str, tls: Arc<ClientConfig>) -> Self {
        Self {
            tls: Some(tls),
            ..Self::new(addr, token)
        }
    }

    /// The bytes the controller sends for one generator evaluation.
    pub fn request(&self, application_set: &str, parameters: &Value) -> Vec<u8> {
        self.request_for(&json!({
            "applicationSetName": application_set,
            "input": {"parameters": parameters},
        }))
    }

    /// The bytes the controller sends with `body` as the request body.
    pub fn request_for(&self, body: &Value) -> Vec<u8> {
        let body = go_json_encode(body);
        let mut head = format!(
            "POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: {}\r\nUser-Agent: argocd-applicationset\r\n\
             Content-Length: {}\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n",
            self.addr,
            body.len()
        );
        // The controller sends the header only for a non-empty token.
        if !self.token.is_empty() {
            head.push_str(&format!("Authorization: Bearer {}\r\n", self.token));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }

    /// Sends raw request bytes on the kept-alive connection and reads the reply.
    pub fn send(&mut self, request: &[u8]) -> Result<Response, String> {
        if self.connection.is_none() {
            let timeout = Duration::from_secs(30);
            let stream = crate::tls::connect(self.addr, self.tls.as_ref(), timeout)?;
            self.connection = Some(BufReader::new(stream));
        }
        let connection = self.connection.as_mut().expect("connected above");
        let result = connection
            .get_mut()
            .write_all(request)
            .and_then(|()| read_response(connection))
            .map_err(|e| format!("exchange: {e}"));
        let close = result
            .as_ref()
            .map_or(true, |reply| reply.header("connection") == Some("close"));
        if close {
            self.connection = None;
        }
        result
    }

    /// One generator evaluation, with the controller's reading of the reply:
    /// the parameter sets, or the error text it would put in the
    /// ApplicationSet's status.
    pub fn get_params(
        &mut self,
        application_set: &str,
        parameters: &Value,
    ) -> Result<Vec<Map<String, Value>>, String> {
        let request = self.request(application_set, parameters);
        let reply = self.send(&request)?;
        interpret(&reply)
    }

    /// Like [`Controller::get_params`], for a whole request body.
    pub fn post(&mut self, body: &Value) -> Result<Vec<Map<String, Value>>, String> {
        let request = self.request_for(body);
        let reply = self.send(&request)?;
        interpret(&reply)
    }
}

/// Go's `json.Encoder` with HTML escaping off: compact JSON and a newline.
pub fn go_json_encode(value: &Value) -> String {
    format!("{value}\n")
}

/// What the controller makes of a reply.
pub fn interpret(reply: &Response) -> Result<Vec<Map<String, Value>>, String> {
    if !(200..300).contains(&reply.status) {
        let message = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|body| {
                let text = |key| body.get(key)?.as_str().map(str::to_owned);
                text("message").or_else(|| text("error"))
            })
            .unwrap_or_else(|| reply.text());
        return Err(format!(
            "API error with status code {}: {message}",
            reply.status
        ));
    }
    if reply.body.is_empty() {
        return Ok(Vec::new());
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("error decoding {:?}: {e}", reply.text()))?;
    let sets = body
        .pointer("/output/parameters")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    serde_json::from_value(sets).map_err(|e| format!("error decoding {:?}: {e}", reply.text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_errors_as_the_controller_shows_them() {
        assert_eq!(
            interpret(&reply(403, r#"{"message":"no"}"#)).unwrap_err(),
            "API error with status code 403: no"
        );
        assert_eq!(
            interpret(&reply(500, r#"{"error":"e"}"#)).unwrap_err(),
            "API error with status code 500: e"
        );
        assert_eq!(
            interpret(&reply(502, "bad gateway")).unwrap_err(),
            "API error with status code 502: bad gateway"
        );
    }

    #[test]
    fn an_empty_success_is_an_empty_list() {
        assert!(interpret(&reply(200, "")).unwrap().is_empty());
        assert_eq!(
            interpret(&reply(200, r#"{"output":{"parameters":[{"a":1}]},"x":1}"#)).unwrap(),
            vec![json!({"a": 1}).as_object().unwrap().clone()]
        );
    }

    #[test]
    fn encodes_like_go_without_html_escaping() {
        assert_eq!(go_json_encode(&json!({"a": "<&>"})), "{\"a\":\"<&>\"}\n");
    }

    #[test]
    fn reads_chunked_and_sized_replies() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(read_response(&mut raw.as_bytes()).unwrap().body, b"abc");
        let raw = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nhi";
        let reply = read_response(&mut raw.as_bytes()).unwrap();
        assert_eq!((reply.status, reply.body), (404, b"hi".to_vec()));
    }
}
