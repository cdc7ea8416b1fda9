//! The wire format of Argo CD's ApplicationSet plugin generator.
//!
//! The controller sends `POST /api/v1/getparams.execute` with a [`GetParamsRequest`]
//! and expects a [`GetParamsResponse`] on success, or any non-2xx status with an
//! [`ErrorBody`] whose `message` it shows in the ApplicationSet's status.
//! Unknown fields are ignored so that newer controllers keep working.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One parameter set: a JSON object whose keys the ApplicationSet template uses.
pub type ParameterMap = Map<String, Value>;

/// The body the controller sends (written by `preview` and tests, read by the server).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParamsRequest {
    pub application_set_name: String,
    /// The ApplicationSet's namespace, from controllers that send it (a
    /// pending Argo CD change adds `applicationSetNamespace`); `None` from
    /// those that do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_set_namespace: Option<String>,
    /// Always present from the controller; tolerated as absent for hand-written requests.
    #[serde(default)]
    pub input: Input,
}

impl GetParamsRequest {
    /// The request the controller sends for an ApplicationSet with these
    /// `input.parameters`.
    pub fn new(
        application_set_name: impl Into<String>,
        application_set_namespace: Option<String>,
        parameters: ParameterMap,
    ) -> Self {
        Self {
            application_set_name: application_set_name.into(),
            application_set_namespace,
            input: Input { parameters },
        }
    }
}

/// The generator's `input` block of the ApplicationSet.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Input {
    /// `input.parameters`; absent or `null` means no parameters.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub parameters: ParameterMap,
}

/// The body of a successful reply: `{"output": {"parameters": [...]}}`.
#[derive(Debug, Clone, Serialize)]
pub struct GetParamsResponse<'a> {
    pub output: Output<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output<'a> {
    pub parameters: &'a [ParameterMap],
}

impl<'a> GetParamsResponse<'a> {
    pub fn new(parameters: &'a [ParameterMap]) -> Self {
        Self {
            output: Output { parameters },
        }
    }
}

/// The body of every error reply; Argo CD shows `message` to the operator.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub message: &'a str,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ParameterMap, D::Error> {
    Ok(Option::<ParameterMap>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &str) -> serde_json::Result<GetParamsRequest> {
        serde_json::from_str(body)
    }

    #[test]
    fn reads_the_controllers_body_with_trailing_newline() {
        let request = parse(
            "{\"applicationSetName\":\"a\",\"input\":{\"parameters\":{\"n\":3,\"l\":[\"x\"]}}}\n",
        )
        .unwrap();
        assert_eq!(request.application_set_name, "a");
        assert_eq!(request.input.parameters["n"], json!(3));
    }

    #[test]
    fn absent_or_null_parameters_mean_none() {
        for body in [
            r#"{"applicationSetName":"a","input":{}}"#,
            r#"{"applicationSetName":"a","input":{"parameters":null}}"#,
            r#"{"applicationSetName":"a"}"#,
        ] {
            assert!(parse(body).unwrap().input.parameters.is_empty(), "{body}");
        }
    }

    #[test]
    fn reads_the_namespace_when_the_controller_sends_it() {
        let with =
            parse(r#"{"applicationSetName":"a","applicationSetNamespace":"team-a","input":{}}"#);
        assert_eq!(
            with.unwrap().application_set_namespace.as_deref(),
            Some("team-a")
        );
        let without = parse(r#"{"applicationSetName":"a","input":{}}"#);
        assert_eq!(without.unwrap().application_set_namespace, None);
    }

    #[test]
    fn ignores_unknown_fields() {
        let body = r#"{"applicationSetName":"a","future":1,"input":{"parameters":{},"x":2}}"#;
        assert!(parse(body).is_ok());
    }

    #[test]
    fn rejects_wrong_shapes() {
        for body in [
            r#"{"input":{}}"#,
            r#"{"applicationSetName":1}"#,
            r#"{"applicationSetName":"a","input":{"parameters":[1]}}"#,
            r#"{"applicationSetName":"a"} trailing"#,
            r#"[]"#,
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }

    #[test]
    fn a_request_written_reads_back_as_the_controller_sends_it() {
        let mut parameters = ParameterMap::new();
        parameters.insert("n".into(), json!([1]));
        let request = GetParamsRequest::new("a", Some("team".into()), parameters.clone());
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(
            body,
            json!({"applicationSetName": "a", "applicationSetNamespace": "team",
                   "input": {"parameters": {"n": [1]}}})
        );
        let without = serde_json::to_value(GetParamsRequest::new("a", None, parameters)).unwrap();
        assert_eq!(
            without,
            json!({"applicationSetName": "a", "input": {"parameters": {"n": [1]}}})
        );
        let back = parse(&body.to_string()).unwrap();
        assert_eq!(back.input.parameters["n"], json!([1]));
    }

    #[test]
    fn writes_the_reply_shape() {
        let mut set = ParameterMap::new();
        set.insert("k".into(), json!("v"));
        let body = serde_json::to_value(GetParamsResponse::new(&[set])).unwrap();
        assert_eq!(body, json!({"output": {"parameters": [{"k": "v"}]}}));
    }
}
