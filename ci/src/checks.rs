//! The checks run on every rendered project. Each returns an error that
//! names the file or object at fault, so a broken template is easy to fix.

use std::path::Path;

use serde_json::{Value, json};

use crate::command::run;
use crate::manifests::{kustomize, one, parse_yaml, string};
use crate::project::Project;
use crate::tools::python_tool;

/// `cargo fmt --check`, `clippy -D warnings` and `cargo test`, all
/// `--locked`, on both crates; and the lock file as rendered is the one cargo
/// itself writes, so a plain `cargo build` leaves it alone.
pub fn rust(project: &Project) -> Result<(), String> {
    let lock = project.read("Cargo.lock");
    project.cargo(&["metadata", "--format-version", "1"])?;
    ensure!(
        project.read("Cargo.lock") == lock,
        "{}: cargo rewrote the rendered Cargo.lock; run `cargo run -p template-ci -- lock`",
        project.name
    );
    project.cargo(&["fmt", "--all", "--check"])?;
    project.cargo(&[
        "clippy",
        "--locked",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    project.cargo(&["test", "--locked"])?;
    Ok(())
}

/// The oldest Kubernetes the install supports (the README says so):
/// `preStop.sleep` is on by default from 1.30.
pub const OLDEST_KUBERNETES: &str = "1.30.0";

/// Builds `deploy/`, `deploy/local/` and `deploy/sidecar-example/` and
/// validates every object against the Kubernetes schemas of the oldest
/// supported version and of the newest the validator knows; lints the
/// Dockerfile, the token script, the YAML and the workflows; checks the
/// wiring. Returns the install's objects.
pub fn deploy(project: &Project) -> Result<Vec<Value>, String> {
    let tool = |name: &str| python_tool(name).map(|path| path.display().to_string());
    let scratch = crate::run_dir().join(format!("validate-{}", project.name));
    fs_err::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut install = Vec::new();
    let mut local = Vec::new();
    let mut kustomizations = vec!["deploy", "deploy/local", "deploy/sidecar-example"];
    if project.dir.join("deploy/argocd-trust-example").exists() {
        kustomizations.push("deploy/argocd-trust-example");
    }
    for kustomization in kustomizations {
        let yaml = kustomize(&project.dir.join(kustomization))?;
        let file = scratch.join(format!("{}.yaml", kustomization.replace('/', "-")));
        fs_err::write(&file, &yaml).map_err(|e| e.to_string())?;
        let file = file.display().to_string();
        let validate = tool("kubernetes-validate")?;
        run(&scratch, &validate, &["--strict", "--quiet", &file])?;
        run(
            &scratch,
            &validate,
            &["--strict", "--quiet", "-k", OLDEST_KUBERNETES, &file],
        )?;
        match kustomization {
            "deploy" => install = parse_yaml(&yaml)?,
            "deploy/local" => local = parse_yaml(&yaml)?,
            _ => {}
        }
    }
    local_overlay(&project.name, &install, &local)?;
    if project.metrics() {
        pod_monitor(project, &install)?;
        alerts(project, &install)?;
    }
    external_secrets(project, &install)?;
    if crate::tls_manifests::serves_https(&install, &project.name) {
        crate::tls_manifests::check(project, &install)?;
    }
    run(
        &project.dir,
        &tool("hadolint")?,
        &["--failure-threshold", "warning", "Dockerfile"],
    )?;
    run(
        &project.dir,
        &tool("shellcheck")?,
        &["deploy/token.sh", crate::judge::COMMAND],
    )?;
    if project.metrics() {
        run(
            &project.dir,
            &tool("shellcheck")?,
            &["deploy/components/alerts/check.sh"],
        )?;
    }
    if project.dir.join(".github/template-update.sh").exists() {
        run(
            &project.dir,
            &tool("shellcheck")?,
            &[".github/template-update.sh"],
        )?;
    }
    let config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable, \
                  comments: {min-spaces-from-content: 1}}}";
    run(
        &project.dir,
        &tool("yamllint")?,
        &["--strict", "-d", config, "deploy"],
    )?;
    if project.dir.join(".github").exists() {
        workflows(project)?;
    }
    let secrets = token_secrets(project)?;
    wiring(&project.name, &install, &secrets)?;
    Ok(install)
}

/// The install for a local cluster: the same objects, the `dev` image, never
/// pulled.
fn local_overlay(name: &str, install: &[Value], local: &[Value]) -> Result<(), String> {
    ensure!(
        install.len() == local.len(),
        "deploy/local has {} objects, the install {}",
        local.len(),
        install.len()
    );
    let container = |objects: &[Value]| -> Result<Value, String> {
        Ok(one(objects, "Deployment", name)?["spec"]["template"]["spec"]["containers"][0].clone())
    };
    let (base, dev) = (container(install)?, container(local)?);
    let image = string(&base, "/image")?;
    let repository = image.rsplit_once(':').map_or(image, |(r, _)| r);
    ensure!(
        dev["image"] == format!("{repository}:dev") && dev["imagePullPolicy"] == "Never",
        "deploy/local runs {} with pull policy {}, not {repository}:dev, never pulled",
        dev["image"],
        dev["imagePullPolicy"]
    );
    Ok(())
}

/// The install with `deploy/components/<component>` added.
pub fn with_component(project: &Project, component: &str) -> Result<String, String> {
    // Kustomize takes only relative paths: a throw-away overlay beside
    // deploy/, one per call (tests may build the same one at once).
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let overlay = project
        .dir
        .join(format!(".check-{component}-{}-{count}", std::process::id()));
    fs_err::create_dir_all(&overlay).map_err(|e| e.to_string())?;
    fs_err::write(
        overlay.join("kustomization.yaml"),
        format!("resources:\n  - ../deploy\ncomponents:\n  - ../deploy/components/{component}\n"),
    )
    .map_err(|e| e.to_string())?;
    let yaml = kustomize(&overlay);
    let _ = std::fs::remove_dir_all(&overlay);
    yaml
}

/// `deploy/components/pod-monitor` added to the install: a PodMonitor that
/// selects the plugin's pods and scrapes their metrics port.
fn pod_monitor(project: &Project, install: &[Value]) -> Result<(), String> {
    let objects = parse_yaml(&with_component(project, "pod-monitor")?)?;
    let name = &project.name;
    let monitor = one(&objects, "PodMonitor", name)?;
    let deployment = one(install, "Deployment", name)?;
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    ensure!(
        monitor["apiVersion"] == "monitoring.coreos.com/v1"
            && monitor["spec"]["selector"]["matchLabels"] == *pod_labels
            && monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"],
        "PodMonitor {name} does not select the plugin's pods: {monitor}"
    );
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    ensure!(
        endpoint["path"] == "/metrics"
            && ports
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == endpoint["port"]),
        "PodMonitor {name} scrapes port {} at {}, which the container does not serve",
        endpoint["port"],
        endpoint["path"]
    );
    ensure!(
        objects.len() == install.len() + 1,
        "the component adds more than the PodMonitor"
    );
    Ok(())
}

/// `deploy/components/alerts` added to the install: one PrometheusRule and
/// a Grafana dashboard's ConfigMap beside the plugin, every alert with a summary, a description and a
/// runbook that the README has, every alert named in the unit tests'
/// expected alerts; and the component's own check (`promtool check rules`,
/// `promtool test rules`) passes.
fn alerts(project: &Project, install: &[Value]) -> Result<(), String> {
    let objects = parse_yaml(&with_component(project, "alerts")?)?;
    let name = &project.name;
    let rule = one(&objects, "PrometheusRule", name)?;
    let deployment = one(install, "Deployment", name)?;
    ensure!(
        rule["apiVersion"] == "monitoring.coreos.com/v1"
            && rule["metadata"]["namespace"] == deployment["metadata"]["namespace"],
        "PrometheusRule {name} is not beside the plugin: {rule}"
    );
    let dashboard = one(&objects, "ConfigMap", &format!("{name}-dashboard"))?;
    ensure!(
        objects.len() == install.len() + 2
            && dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
            && dashboard["metadata"]["namespace"] == deployment["metadata"]["namespace"],
        "the alerts component adds more than the PrometheusRule and its dashboard: {dashboard}"
    );
    let panels = crate::prometheus::dashboard_queries(dashboard)?;
    ensure!(
        panels.len() >= 4,
        "the dashboard has {} queries",
        panels.len()
    );
    let readme = project.read("README.md");
    let tests = project.read("deploy/components/alerts/tests.yaml");
    let mut alerts = Vec::new();
    for group in rule["spec"]["groups"].as_array().into_iter().flatten() {
        for alert in group["rules"].as_array().into_iter().flatten() {
            let alert_name = alert["alert"].as_str().unwrap_or_default();
            let annotations = &alert["annotations"];
            for key in ["summary", "description", "runbook_url"] {
                ensure!(
                    annotations[key]
                        .as_str()
                        .is_some_and(|text| !text.is_empty()),
                    "alert {alert_name} has no {key}"
                );
            }
            let runbook = annotations["runbook_url"].as_str().unwrap_or_default();
            let anchor = runbook.rsplit_once('#').map(|(_, anchor)| anchor);
            ensure!(
                anchor == Some(alert_name.to_lowercase().as_str())
                    && readme.contains(&format!("\n#### {alert_name}\n")),
                "alert {alert_name}: its runbook {runbook} is not a README.md section `#### {alert_name}`"
            );
            ensure!(
                tests.contains(&format!(
                    "alertname: {alert_name}\n        exp_alerts:\n          - exp_labels"
                )),
                "alert {alert_name} is never expected to fire in deploy/components/alerts/tests.yaml"
            );
            alerts.push(alert_name.to_owned());
        }
    }
    ensure!(
        alerts.len() >= 5,
        "PrometheusRule {name} has {} alerts",
        alerts.len()
    );
    let check = project.dir.join("deploy/components/alerts/check.sh");
    run(&project.dir, &check.display().to_string(), &[])?;
    Ok(())
}

/// `deploy/components/external-secrets` added to the install: two
/// ExternalSecrets that make from one remote secret the Secret the
/// Deployment mounts and the one the plugin ConfigMap names (labelled for
/// Argo CD). The project's judge validates them against the operator's CRD
/// and renders Argo CD's token template as the operator does.
pub fn external_secrets(project: &Project, install: &[Value]) -> Result<(), String> {
    let objects = parse_yaml(&with_component(project, "external-secrets")?)?;
    ensure!(
        objects.len() == install.len() + 2,
        "the external-secrets component adds more than two ExternalSecrets"
    );
    let name = &project.name;
    let deployment = one(install, "Deployment", name)?;
    let configmap = one(install, "ConfigMap", name)?;
    let mounted = string(
        deployment,
        "/spec/template/spec/volumes/0/secret/secretName",
    )?;
    let (named, _) = token_reference(configmap)?;
    let external: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ExternalSecret")
        .collect();
    let by_namespace = |namespace: &Value| {
        external
            .iter()
            .find(|o| o["metadata"]["namespace"] == *namespace)
            .copied()
            .ok_or_else(|| format!("no ExternalSecret in {namespace}"))
    };
    let plugin = by_namespace(&deployment["metadata"]["namespace"])?;
    let argocd = by_namespace(&configmap["metadata"]["namespace"])?;
    ensure!(
        plugin["spec"]["target"]["name"] == mounted && argocd["spec"]["target"]["name"] == named,
        "the ExternalSecrets make {} and {}, but the Deployment mounts {mounted} and the ConfigMap names {named}",
        plugin["spec"]["target"]["name"],
        argocd["spec"]["target"]["name"]
    );
    ensure!(
        argocd["spec"]["target"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"]
            == "argocd",
        "Argo CD's ExternalSecret makes a Secret without app.kubernetes.io/part-of: argocd"
    );
    ensure!(
        plugin["spec"]["secretStoreRef"] == argocd["spec"]["secretStoreRef"]
            && plugin["spec"]["data"] == argocd["spec"]["data"],
        "the two ExternalSecrets read different stores or remote keys"
    );
    Ok(())
}

/// The rendered project's GitHub workflows and Dependabot config against
/// their schemas, `actionlint` and `zizmor` (offline, no configuration).
pub fn workflows(project: &Project) -> Result<(), String> {
    let rendered = [
        ".github/workflows/ci.yml",
        ".github/workflows/image.yml",
        ".github/workflows/template-update.yml",
    ];
    lint_workflows(&project.dir, &rendered)?;
    let check = python_tool("check-jsonschema")?.display().to_string();
    for workflow in rendered {
        run(
            &project.dir,
            &check,
            &["--builtin-schema", "vendor.github-workflows", workflow],
        )?;
    }
    run(
        &project.dir,
        &check,
        &[
            "--builtin-schema",
            "vendor.dependabot",
            ".github/dependabot.yml",
        ],
    )?;
    Ok(())
}

/// `actionlint` and `zizmor --offline --no-config` on `workflows` (paths
/// relative to `dir`) and `dir/.github`: no finding passes.
pub fn lint_workflows(dir: &Path, workflows: &[&str]) -> Result<(), String> {
    let actionlint = python_tool("actionlint")?.display().to_string();
    let zizmor = python_tool("zizmor")?.display().to_string();
    // Its shell checks of `run:` scripts, with the shellcheck we install.
    let shellcheck = format!("-shellcheck={}", python_tool("shellcheck")?.display());
    let mut args = vec!["-no-color", shellcheck.as_str()];
    args.extend_from_slice(workflows);
    run(dir, &actionlint, &args)?;
    run(
        dir,
        &zizmor,
        &[
            "--offline",
            "--no-config",
            "--no-progress",
            "--min-severity",
            "informational",
            ".github",
        ],
    )?;
    Ok(())
}

/// The two Secrets `deploy/token.sh print` makes: the plugin's, then Argo CD's.
pub fn token_secrets(project: &Project) -> Result<Vec<Value>, String> {
    let output = run(&project.dir, "bash", &["deploy/token.sh", "print"])?;
    let secrets = parse_yaml(&String::from_utf8_lossy(&output.stdout))?;
    ensure!(
        secrets.len() == 2,
        "deploy/token.sh print made {} objects, not 2",
        secrets.len()
    );
    Ok(secrets)
}

/// The Secret and key a plugin ConfigMap's `token: $<secret>:<key>` names.
fn token_reference(configmap: &Value) -> Result<(&str, &str), String> {
    let reference = string(configmap, "/data/token")?;
    reference
        .strip_prefix('$')
        .and_then(|r| r.split_once(':'))
        .ok_or_else(|| {
            format!(
                "ConfigMap {}: token {reference:?} is not $<secret>:<key>",
                configmap["metadata"]["name"]
            )
        })
}

/// The ConfigMap, Service, Deployment, NetworkPolicy and the token Secrets
/// agree: Argo CD reaches the plugin, with the token the plugin reads.
pub fn wiring(name: &str, install: &[Value], secrets: &[Value]) -> Result<(), String> {
    let deployment = one(install, "Deployment", name)?;
    let service = one(install, "Service", name)?;
    let configmap = one(install, "ConfigMap", name)?;
    let policy = one(install, "NetworkPolicy", name)?;
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = |variable: &str| -> Result<&str, String> {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == variable)
            .and_then(|e| e["value"].as_str())
            .ok_or_else(|| format!("Deployment {name}: no env {variable}"))
    };

    // Argo CD's baseUrl reaches the Service, and the Service the container.
    let plugin_ns = string(deployment, "/metadata/namespace")?;
    let port = &service["spec"]["ports"][0]["port"];
    let base_url = string(configmap, "/data/baseUrl")?;
    // `<service>.<namespace>.svc`: any cluster domain, and no trailing dot,
    // which Go's NO_PROXY matching does not strip.
    let scheme = if crate::tls_manifests::serves_https(install, name) {
        "https"
    } else {
        "http"
    };
    let expected = format!("{scheme}://{name}.{plugin_ns}.svc:{port}");
    ensure!(
        base_url == expected,
        "ConfigMap {name}: baseUrl is {base_url}, but the Service is at {expected}"
    );
    ensure!(
        service["metadata"]["namespace"] == plugin_ns,
        "Service {name} is not in {plugin_ns}"
    );
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    ensure!(
        deployment["spec"]["selector"]["matchLabels"] == *pod_labels,
        "Deployment {name}: selector differs from the pod labels"
    );
    ensure!(
        service["spec"]["selector"] == *pod_labels,
        "Service {name} does not select the pods"
    );
    let target = &service["spec"]["ports"][0]["targetPort"];
    let container_port = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == *target || p["containerPort"] == *target)
        .ok_or_else(|| format!("Service {name}: targetPort {target} is no container port"))?;
    ensure!(
        container_port["containerPort"] == *port,
        "Service {name} port {port} differs from the container port {}",
        container_port["containerPort"]
    );
    let listen = env("PLUGIN_LISTEN_ADDR")?;
    ensure!(
        listen == format!("0.0.0.0:{port}"),
        "PLUGIN_LISTEN_ADDR {listen} differs from port {port}"
    );

    // The ConfigMap's token names the Secret token.sh makes in Argo CD's namespace.
    let (plugin_secret, argocd_secret) = (&secrets[0], &secrets[1]);
    let argocd_ns = string(configmap, "/metadata/namespace")?;
    let (secret, key) = token_reference(configmap)?;
    ensure!(
        argocd_secret["metadata"]["name"] == secret
            && argocd_secret["metadata"]["namespace"] == argocd_ns,
        "ConfigMap {name} points at Secret {argocd_ns}/{secret}, which token.sh does not make"
    );
    ensure!(
        argocd_secret["data"][key].is_string(),
        "token.sh's Secret {secret} has no key {key}"
    );
    ensure!(
        argocd_secret["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd",
        "Secret {secret} lacks the label app.kubernetes.io/part-of: argocd, so Argo CD ignores it"
    );

    // The plugin's Secret is mounted whole where PLUGIN_TOKEN_FILE points.
    let volume = &pod["volumes"][0];
    let mount = &container["volumeMounts"][0];
    ensure!(
        volume["secret"]["secretName"] == plugin_secret["metadata"]["name"]
            && plugin_secret["metadata"]["namespace"] == plugin_ns,
        "Deployment {name} mounts Secret {}, but token.sh makes {}/{}",
        volume["secret"]["secretName"],
        plugin_secret["metadata"]["namespace"],
        plugin_secret["metadata"]["name"]
    );
    ensure!(
        mount["name"] == volume["name"],
        "Deployment {name}: the token volume is not mounted"
    );
    ensure!(
        mount.get("subPath").is_none(),
        "Deployment {name}: subPath stops token rotation"
    );
    let token_key = plugin_secret["data"]
        .as_object()
        .and_then(|d| d.keys().next())
        .cloned();
    let token_file = format!(
        "{}/{}",
        mount["mountPath"].as_str().unwrap_or(""),
        token_key.unwrap_or_default()
    );
    ensure!(
        env("PLUGIN_TOKEN_FILE")? == token_file,
        "PLUGIN_TOKEN_FILE is {}, but the token is mounted at {token_file}",
        env("PLUGIN_TOKEN_FILE")?
    );

    // Argo CD's two callers are admitted to the plugin's port, and nothing
    // else (Prometheus only to the metrics port).
    ensure!(
        policy["spec"]["podSelector"]["matchLabels"] == *pod_labels,
        "NetworkPolicy {name} misses the pods"
    );
    let port = port.as_u64().unwrap_or(0);
    let caller = |app: &str| json!({"app.kubernetes.io/name": app});
    for (app, namespace, admitted) in [
        ("argocd-applicationset-controller", argocd_ns, true),
        ("argocd-server", argocd_ns, true),
        ("argocd-repo-server", argocd_ns, false),
        ("argocd-application-controller", argocd_ns, false),
        ("argocd-applicationset-controller", "default", false),
        ("argocd-server", plugin_ns, false),
        ("prometheus", "monitoring", false),
    ] {
        ensure!(
            admits(policy, plugin_ns, namespace, &caller(app), port) == admitted,
            "NetworkPolicy {name} {} {app} in {namespace} to port {port}",
            if admitted { "does not admit" } else { "admits" }
        );
    }

    // With metrics: their own port, which alone Prometheus may reach.
    let metrics_port = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "metrics")
        .map(|p| p["containerPort"].clone());
    if let Some(metrics_port) = metrics_port {
        let listen = env("PLUGIN_METRICS_ADDR")?;
        ensure!(
            listen == format!("0.0.0.0:{metrics_port}"),
            "PLUGIN_METRICS_ADDR {listen} differs from the metrics port {metrics_port}"
        );
        ensure!(
            admits(
                policy,
                plugin_ns,
                "monitoring",
                &caller("prometheus"),
                metrics_port.as_u64().unwrap_or(0)
            ),
            "NetworkPolicy {name} does not admit Prometheus to the metrics port {metrics_port}"
        );
        let annotation =
            &deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"];
        ensure!(
            annotation.as_str().and_then(|a| a.parse::<u64>().ok()) == metrics_port.as_u64(),
            "Deployment {name}: prometheus.io/port {annotation} is not the metrics port {metrics_port}"
        );
    }

    // Argo CD waits longer than the generator deadline (25 s), Kubernetes
    // longer than the plugin's shutdown (30 s).
    let timeout: u64 = string(configmap, "/data/requestTimeout")?
        .parse()
        .map_err(|e| format!("ConfigMap {name}: requestTimeout: {e}"))?;
    ensure!(
        timeout > 25,
        "ConfigMap {name}: requestTimeout {timeout} is not above the 25 s deadline"
    );
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    ensure!(
        grace > 40,
        "Deployment {name}: terminationGracePeriodSeconds {grace} is not above preStop (5 s), \
         the drain (5 s) and the 30 s shutdown"
    );
    Ok(())
}

/// `cargo deny check` of licences, bans and sources against the project's
/// `deny.toml` (advisories need the RustSec database from the network: the
/// project's CI checks them).
pub fn dependencies(project: &Project) -> Result<(), String> {
    let deny = crate::tools::cargo_tool(crate::tools::CARGO_DENY)?;
    run(
        &project.dir,
        &deny.display().to_string(),
        &["--locked", "check", "licenses", "bans", "sources"],
    )?;
    Ok(())
}

/// Builds the release binary; runs Argo CD's own code on it (the judge),
/// then what Argo CD's code cannot exercise (raw sockets, limits, curl).
pub fn release(project: &Project) -> Result<(), String> {
    crate::judge::run(project)?;
    crate::conformance::run(project)
}

/// Everything, on one rendered project, saying what it does as it goes
/// (the first run builds everything and installs the tools: minutes).
pub fn all(project: &Project) -> Result<(), String> {
    use crate::progress::run;
    use crate::tools::FIRST_USE;
    run(
        "fmt, clippy and cargo test",
        Some(FIRST_USE.debug_build),
        || rust(project),
    )?;
    run(
        "cargo deny: licenses, bans, sources",
        Some(FIRST_USE.cargo_deny),
        || dependencies(project),
    )?;
    run(
        "the manifests: kustomize, schemas, linters, wiring",
        Some(FIRST_USE.linters),
        || deploy(project).map(drop),
    )?;
    run(
        "the release build, Argo CD's judge, conformance",
        Some(FIRST_USE.release_and_judge),
        || release(project),
    )?;
    run("the Dockerfile's build stage, replayed", None, || {
        crate::docker::replay(project)
    })?;
    Ok(())
}

/// Whether `dir` holds no leftover template syntax.
pub fn no_template_syntax(dir: &Path) -> Result<(), String> {
    for path in crate::files_under(dir) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for leftover in [
            "{%",
            "{{project-name",
            "{{ project-name",
            "{{plugin_",
            "{{crate_name",
        ] {
            ensure!(
                !text.contains(leftover),
                "{} still holds {leftover}",
                path.display()
            );
        }
    }
    Ok(())
}

/// Whether a NetworkPolicy admits TCP to `port` of its pods from a pod with
/// `labels` in `namespace` (whose only label is its name), as Kubernetes
/// evaluates ingress rules: any rule whose peers and ports both match.
pub fn admits(policy: &Value, policy_ns: &str, namespace: &str, labels: &Value, port: u64) -> bool {
    let namespace_labels = json!({"kubernetes.io/metadata.name": namespace});
    let peer_matches = |peer: &Value| {
        let (pods, namespaces) = (&peer["podSelector"], &peer["namespaceSelector"]);
        if pods.is_null() && namespaces.is_null() {
            return false; // an ipBlock
        }
        let namespace_ok = if namespaces.is_null() {
            namespace == policy_ns
        } else {
            selects(namespaces, &namespace_labels)
        };
        namespace_ok && (pods.is_null() || selects(pods, labels))
    };
    let port_matches = |entry: &Value| {
        entry["protocol"].as_str().unwrap_or("TCP") == "TCP"
            && (entry["port"].is_null() || entry["port"].as_u64() == Some(port))
    };
    policy["spec"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| {
            let from = rule["from"].as_array();
            let ports = rule["ports"].as_array();
            from.is_none_or(|peers| peers.iter().any(peer_matches))
                && ports.is_none_or(|ports| ports.iter().any(port_matches))
        })
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`) against labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_label = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| labels[key] == *value);
    let by_expression = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|expression| {
            let value = &labels[expression["key"].as_str().unwrap_or("")];
            let listed = expression["values"]
                .as_array()
                .is_some_and(|values| values.contains(value));
            match expression["operator"].as_str() {
                Some("In") => listed,
                Some("NotIn") => !listed,
                Some("Exists") => !value.is_null(),
                Some("DoesNotExist") => value.is_null(),
                _ => false,
            }
        });
    by_label && by_expression
}
