//! The rendered project's container and Kubernetes install: validated
//! against the schemas, linted, scanned, and checked for consistent wiring.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use template_ci::command::{run, run_command};
use template_ci::manifests::{find, kustomize, parse_yaml, text};
use template_ci::project::Project;
use template_ci::render::Render;
use template_ci::tools::python_tool;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");
const NAME: &str = "plugin-deploy";

fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| Project::render(CI, &Render::new(NAME)).unwrap())
}

fn install() -> &'static Vec<Value> {
    static OBJECTS: OnceLock<Vec<Value>> = OnceLock::new();
    OBJECTS.get_or_init(|| parse_yaml(&kustomize(&project().dir.join("deploy")).unwrap()).unwrap())
}

fn tool(name: &str) -> String {
    python_tool(name).unwrap().display().to_string()
}

#[test]
fn install_and_sidecar_validate_against_kubernetes_schemas() {
    let dir = std::env::temp_dir().join(format!("template-ci-manifests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for kustomization in ["deploy", "deploy/sidecar-example"] {
        let yaml = kustomize(&project().dir.join(kustomization)).unwrap();
        let file = dir.join(format!("{}.yaml", kustomization.replace('/', "-")));
        std::fs::write(&file, yaml).unwrap();
        run(
            &dir,
            &tool("kubernetes-validate"),
            &["--strict", "--quiet", file.to_str().unwrap()],
        )
        .unwrap();
    }
    let kinds: Vec<&str> = install()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "ConfigMap",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ])
    );
}

#[test]
fn dockerfile_passes_hadolint() {
    run(
        &project().dir,
        &tool("hadolint"),
        &["--failure-threshold", "warning", "Dockerfile"],
    )
    .unwrap();
}

#[test]
fn yaml_files_pass_yamllint() {
    let config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable, \
                  comments: {min-spaces-from-content: 1}}}";
    run(
        &project().dir,
        &tool("yamllint"),
        &["--strict", "-d", config, "deploy"],
    )
    .unwrap();
}

#[test]
fn token_script_passes_shellcheck_and_prints_both_secrets_offline() {
    let dir = &project().dir;
    run(dir, "bash", &["-n", "deploy/token.sh"]).unwrap();
    run(dir, &tool("shellcheck"), &["deploy/token.sh"]).unwrap();
    let first = token_secrets();
    let second = token_secrets();
    let value = |secrets: &[Value], i: usize| text(&secrets[i], "/data/token").to_owned();
    assert_eq!(
        value(&first, 0),
        value(&first, 1),
        "one token lands in both Secrets"
    );
    assert_ne!(
        value(&first, 0),
        value(&second, 0),
        "every run makes a new token"
    );
    assert_eq!(value(&first, 0).len(), 88, "256 bits, hex, base64-encoded");
}

/// The Secrets `deploy/token.sh print` would apply: plugin's, then Argo CD's.
fn token_secrets() -> Vec<Value> {
    let output = run(&project().dir, "bash", &["deploy/token.sh", "print"]).unwrap();
    let secrets = parse_yaml(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(secrets.len(), 2);
    secrets
}

#[test]
fn argocd_configmap_service_secrets_and_deployment_agree() {
    let objects = install();
    let deployment = find(objects, "Deployment", NAME);
    let service = find(objects, "Service", NAME);
    let configmap = find(objects, "ConfigMap", NAME);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| text(e, "/value").to_owned())
            .unwrap_or_else(|| panic!("no env {name}"))
    };

    // baseUrl reaches the Service, and the Service reaches the container.
    let plugin_ns = text(deployment, "/metadata/namespace");
    let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(
        text(configmap, "/data/baseUrl"),
        format!("http://{NAME}.{plugin_ns}.svc.cluster.local.:{port}")
    );
    assert_eq!(text(service, "/metadata/namespace"), plugin_ns);
    assert_eq!(service["spec"]["selector"], pod_labels(deployment));
    let target = text(service, "/spec/ports/0/targetPort");
    let container_port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == target)
        .expect("the Service's targetPort names a container port");
    assert_eq!(container_port["containerPort"], json!(port));
    assert_eq!(env("PLUGIN_LISTEN_ADDR"), format!("0.0.0.0:{port}"));

    // The ConfigMap's token names the Secret and key token.sh makes in Argo CD's namespace.
    let secrets = token_secrets();
    let (plugin_secret, argocd_secret) = (&secrets[0], &secrets[1]);
    let argocd_ns = text(configmap, "/metadata/namespace");
    let reference = text(configmap, "/data/token");
    let (secret_name, key) = reference
        .strip_prefix('$')
        .and_then(|r| r.split_once(':'))
        .expect("token is $<secret>:<key>");
    assert_eq!(text(argocd_secret, "/metadata/name"), secret_name);
    assert_eq!(text(argocd_secret, "/metadata/namespace"), argocd_ns);
    assert_eq!(
        text(argocd_secret, "/metadata/labels/app.kubernetes.io~1part-of"),
        "argocd"
    );
    assert!(
        argocd_secret["data"][key].is_string(),
        "Argo CD's Secret has key {key}"
    );

    // The plugin's Secret is mounted whole (no subPath) where PLUGIN_TOKEN_FILE points.
    let volume = &pod["volumes"].as_array().unwrap()[0];
    assert_eq!(
        text(volume, "/secret/secretName"),
        text(plugin_secret, "/metadata/name")
    );
    assert_eq!(text(plugin_secret, "/metadata/namespace"), plugin_ns);
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["name"], volume["name"]);
    assert!(
        mount.get("subPath").is_none(),
        "subPath stops token rotation"
    );
    let token_key = plugin_secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap();
    assert_eq!(
        env("PLUGIN_TOKEN_FILE"),
        format!("{}/{token_key}", text(mount, "/mountPath"))
    );
    assert!(env("PLUGIN_TOKEN_FILE").starts_with("/var/run/argo/"));

    // Timeouts: Argo CD waits longer than the plugin's generator deadline
    // (25 s), and Kubernetes longer than the plugin's shutdown (30 s).
    let request_timeout: u64 = text(configmap, "/data/requestTimeout").parse().unwrap();
    assert!(request_timeout > 25);
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 30);
}

fn pod_labels(deployment: &Value) -> Value {
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], *labels);
    labels.clone()
}

#[test]
fn network_policy_admits_the_applicationset_controller_and_prometheus_only() {
    let objects = install();
    let deployment = find(objects, "Deployment", NAME);
    let policy = find(objects, "NetworkPolicy", NAME);
    let configmap = find(objects, "ConfigMap", NAME);
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        pod_labels(deployment)
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    // The controller's rule, and with metrics on, Prometheus' (for /metrics).
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[1]["from"],
        json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}])
    );
    let from = rules[0]["from"].as_array().unwrap();
    assert_eq!(from.len(), 1, "one `from` item: namespace AND pod selector");
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"],
        json!({"kubernetes.io/metadata.name": text(configmap, "/metadata/namespace")})
    );
    assert_eq!(
        from[0]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "argocd-applicationset-controller"})
    );
    let port = find(objects, "Service", NAME)["spec"]["ports"][0]["port"].clone();
    assert_eq!(
        rules[0]["ports"],
        json!([{"protocol": "TCP", "port": port}])
    );
}

#[test]
fn pod_meets_the_restricted_pod_security_profile() {
    let deployment = find(install(), "Deployment", NAME);
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    let user = security["runAsUser"].as_u64().unwrap();
    assert!(user >= 10000 && security["runAsGroup"].as_u64().unwrap() >= 10000);
    let dockerfile = project().read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("\nUSER {user}:{user}\n")),
        "the image runs as {user}"
    );
    assert_eq!(text(container, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(text(container, "/readinessProbe/httpGet/path"), "/readyz");
    for limit in [
        "/resources/requests/cpu",
        "/resources/requests/memory",
        "/resources/limits/memory",
    ] {
        text(container, limit);
    }
    let sa = find(install(), "ServiceAccount", NAME);
    assert_eq!(sa["automountServiceAccountToken"], false);
    let namespace = &install().iter().find(|o| o["kind"] == "Namespace").unwrap();
    assert_eq!(
        text(
            namespace,
            "/metadata/labels/pod-security.kubernetes.io~1enforce"
        ),
        "restricted"
    );
}

#[test]
fn scanners_find_nothing_but_the_missing_image_digest() {
    let dir = std::env::temp_dir().join(format!("template-ci-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("install.yaml"),
        kustomize(&project().dir.join("deploy")).unwrap(),
    )
    .unwrap();
    std::fs::copy(project().dir.join("Dockerfile"), dir.join("Dockerfile")).unwrap();
    let output = Command::new(tool("checkov"))
        .args([
            "--directory",
            ".",
            "--framework",
            "kubernetes",
            "dockerfile",
        ])
        .args(["--output", "json", "--quiet", "--skip-download"])
        .env("BC_SKIP_MAPPING", "TRUE")
        .current_dir(&dir)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let reports = match report {
        Value::Array(reports) => reports,
        single => vec![single],
    };
    let mut failed = BTreeSet::new();
    let mut passed = 0;
    for report in &reports {
        passed += report["summary"]["passed"].as_u64().unwrap_or(0);
        for check in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.insert(text(check, "/check_id").to_owned());
        }
    }
    assert!(passed > 100, "checkov ran its checks ({passed} passed)");
    // Pinning by digest needs the pushed image; CI pins it at release.
    assert_eq!(failed, BTreeSet::from(["CKV_K8S_43".to_owned()]));
}

#[test]
fn example_applicationsets_keep_their_go_templates() {
    let single = project().read("deploy/examples/applicationset.yaml");
    let matrix = project().read("deploy/examples/applicationset-matrix.yaml");
    for expected in [
        r#"name: "{{ .name }}-{{ .environment }}""#,
        r#"'{{ index .generator.input.parameters "name" }}'"#,
        r#""{{ .values.repoURL }}""#,
        "name: plugin-deploy\n",
    ] {
        assert!(
            single.contains(expected),
            "applicationset.yaml lacks {expected}"
        );
    }
    for expected in [
        r#"branch: "{{ .branch }}""#,
        r#"'{{ index .generator.input.parameters "branch" }}'"#,
        "https://github.com/my-org/guestbook/tree/{{ .branch }}",
        "name: plugin-deploy\n",
    ] {
        assert!(
            matrix.contains(expected),
            "applicationset-matrix.yaml lacks {expected}"
        );
    }
    let examples = parse_yaml(&format!("{single}\n---\n{matrix}")).unwrap();
    let config_map = "/plugin/configMapRef/name";
    assert_eq!(
        text(&examples[0], &format!("/spec/generators/0{config_map}")),
        NAME
    );
    let in_matrix = format!("/spec/generators/0/matrix/generators/1{config_map}");
    assert_eq!(text(&examples[1], &in_matrix), NAME);
    run_command(
        Command::new(tool("yamllint"))
            .args(["-d", "relaxed", "deploy/examples"])
            .current_dir(&project().dir),
    )
    .unwrap();
}

#[test]
fn sidecar_variant_reaches_the_plugin_on_localhost_with_argocds_secret() {
    let yaml = kustomize(&project().dir.join("deploy/sidecar-example")).unwrap();
    let objects = parse_yaml(&yaml).unwrap();
    let controller = find(&objects, "Deployment", "argocd-applicationset-controller");
    let configmap = find(&objects, "ConfigMap", NAME);
    let containers = controller["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        containers.len(),
        2,
        "the controller keeps its container and gains the plugin"
    );
    let plugin = containers.iter().find(|c| c["name"] == NAME).unwrap();
    let listen = plugin["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PLUGIN_LISTEN_ADDR")
        .unwrap();
    assert_eq!(
        text(configmap, "/data/baseUrl"),
        format!("http://{}", text(listen, "/value"))
    );
    let volume = &controller["spec"]["template"]["spec"]["volumes"][0];
    let reference = text(configmap, "/data/token");
    assert_eq!(
        format!("${}:token", text(volume, "/secret/secretName")),
        reference
    );
    let helm = project().read("deploy/helm/sidecar-values.yaml");
    assert!(helm.contains("extraContainers:") && helm.contains(reference));
}
