//! The manifests of a project rendered with `tls`: cert-manager issues a
//! certificate for the Service's host, the Deployment serves it from the
//! mounted Secret and probes over HTTPS, the CA bootstrap hangs together,
//! `components/cluster-issuer` swaps it for a ClusterIssuer, and
//! `components/argocd-trust` gets the CA to both of Argo CD's callers
//! without dropping their system roots. (The objects' schemas are the
//! operators' CRDs: the judge checks them.)

use serde_json::Value;

use crate::checks::with_component;
use crate::manifests::{kustomize, one, parse_yaml, string};
use crate::project::Project;

/// Whether the install serves HTTPS (its Deployment names a certificate).
pub fn serves_https(install: &[Value], name: &str) -> bool {
    one(install, "Deployment", name)
        .is_ok_and(|deployment| env(container(deployment), "PLUGIN_TLS_CERT_FILE").is_some())
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// Where a Deployment's first container mounts the pod volume that
/// `volume` picks (`what` names it in errors).
fn mount_of<'a>(
    deployment: &'a Value,
    what: &str,
    volume: impl Fn(&Value) -> bool,
) -> Result<&'a Value, String> {
    let name = &deployment["metadata"]["name"];
    let list = |value: &'a Value| value.as_array().into_iter().flatten();
    let found = list(&deployment["spec"]["template"]["spec"]["volumes"])
        .find(|v| volume(v))
        .ok_or_else(|| format!("Deployment {name} has no volume of {what}"))?;
    list(&container(deployment)["volumeMounts"])
        .find(|m| m["name"] == found["name"])
        .ok_or_else(|| format!("Deployment {name}: the volume of {what} is not mounted"))
}

/// Every check of this module.
pub fn check(project: &Project, install: &[Value]) -> Result<(), String> {
    let name = &project.name;
    let deployment = one(install, "Deployment", name)?;
    let namespace = string(deployment, "/metadata/namespace")?;
    let certificate = one(install, "Certificate", &format!("{name}-tls"))?;
    let host = format!("{name}.{namespace}.svc");
    let names = &certificate["spec"]["dnsNames"];
    ensure!(
        *names == serde_json::json!([host, format!("{host}.cluster.local")]),
        "Certificate {name}-tls names {names}, not the Service's {host} and its cluster.local form"
    );
    served_from_the_secret(name, deployment, certificate)?;
    let probes = ["livenessProbe", "readinessProbe"]
        .map(|probe| &container(deployment)[probe]["httpGet"]["scheme"]);
    ensure!(
        probes.iter().all(|scheme| *scheme == "HTTPS"),
        "Deployment {name}: probes use {probes:?}, not HTTPS"
    );
    let service = one(install, "Service", name)?;
    ensure!(
        service["spec"]["ports"][0]["appProtocol"] == "https",
        "Service {name}: its port's appProtocol is not https (meshes would read TLS as HTTP)"
    );
    bootstrap(name, certificate, install)?;
    cluster_issuer(project, install)?;
    argocd_trust(project, install)
}

/// The Deployment mounts the certificate's Secret whole, read-only, where
/// the plugin's two files point (cert-manager's keys `tls.crt`, `tls.key`).
fn served_from_the_secret(
    name: &str,
    deployment: &Value,
    certificate: &Value,
) -> Result<(), String> {
    let secret = string(certificate, "/spec/secretName")?;
    let mount = mount_of(deployment, &format!("Secret {secret}"), |volume| {
        volume["secret"]["secretName"] == secret
    })?;
    ensure!(
        mount["readOnly"] == true && mount.get("subPath").is_none(),
        "Deployment {name}: {secret} must be mounted read-only and whole (subPath stops renewals)"
    );
    let folder = string(mount, "/mountPath")?;
    for (variable, key) in [
        ("PLUGIN_TLS_CERT_FILE", "tls.crt"),
        ("PLUGIN_TLS_KEY_FILE", "tls.key"),
    ] {
        let expected = format!("{folder}/{key}");
        let set = env(container(deployment), variable);
        ensure!(
            set == Some(expected.as_str()),
            "Deployment {name}: {variable} is {set:?}, but cert-manager's {key} is at {expected}"
        );
    }
    Ok(())
}

/// The certificate's Issuer is a CA Issuer whose Secret a CA Certificate
/// fills, itself signed by a self-signed Issuer.
fn bootstrap(name: &str, certificate: &Value, install: &[Value]) -> Result<(), String> {
    let issuer_name = string(certificate, "/spec/issuerRef/name")?;
    ensure!(
        certificate["spec"]["issuerRef"]["kind"] == "Issuer",
        "Certificate {name}-tls: not issued by the bootstrapped Issuer"
    );
    let issuer = one(install, "Issuer", issuer_name)?;
    let ca_secret = string(issuer, "/spec/ca/secretName")?;
    let ca = install
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["spec"]["secretName"] == ca_secret)
        .ok_or_else(|| format!("no Certificate fills the CA Secret {ca_secret}"))?;
    ensure!(
        ca["spec"]["isCA"] == true,
        "Certificate {}: fills the CA Secret but is no CA",
        ca["metadata"]["name"]
    );
    let root = one(install, "Issuer", string(ca, "/spec/issuerRef/name")?)?;
    ensure!(
        root["spec"]["selfSigned"].is_object(),
        "the CA's Issuer {} is not self-signed",
        root["metadata"]["name"]
    );
    Ok(())
}

/// `components/cluster-issuer`: the certificate from a ClusterIssuer, and
/// the three bootstrap objects gone.
fn cluster_issuer(project: &Project, install: &[Value]) -> Result<(), String> {
    let name = &project.name;
    let objects = parse_yaml(&with_component(project, "cluster-issuer")?)?;
    let certificate = one(&objects, "Certificate", &format!("{name}-tls"))?;
    ensure!(
        certificate["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
            && objects.len() + 3 == install.len()
            && !objects.iter().any(|o| o["kind"] == "Issuer"),
        "components/cluster-issuer: the certificate's issuer is {}, {} objects of {}",
        certificate["spec"]["issuerRef"],
        objects.len(),
        install.len()
    );
    Ok(())
}

/// `deploy/argocd-trust-example`: both of Argo CD's callers mount the
/// ConfigMap trust-manager's Bundle writes into Argo CD's namespace, from
/// the CA's Secret, and list that folder beside the image's own roots.
fn argocd_trust(project: &Project, install: &[Value]) -> Result<(), String> {
    let name = &project.name;
    let objects = parse_yaml(&kustomize(
        &project.dir.join("deploy/argocd-trust-example"),
    )?)?;
    let bundle = one(&objects, "Bundle", &format!("{name}-ca"))?;
    let configmap = one(install, "ConfigMap", name)?;
    let argocd = string(configmap, "/metadata/namespace")?;
    let ca = install
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["spec"]["isCA"] == true)
        .ok_or("no CA Certificate in the install")?;
    ensure!(
        bundle["spec"]["sources"][0]["secret"]["name"] == ca["spec"]["secretName"]
            && bundle["spec"]["target"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                == argocd,
        "Bundle {name}-ca does not copy the CA's Secret {} into {argocd}",
        ca["spec"]["secretName"]
    );
    let key = string(bundle, "/spec/target/configMap/key")?;
    for caller in ["argocd-applicationset-controller", "argocd-server"] {
        let deployment = one(&objects, "Deployment", caller)?;
        let mount = mount_of(deployment, "the Bundle's ConfigMap", |volume| {
            volume["configMap"]["name"] == bundle["metadata"]["name"]
        })?;
        let folder = string(mount, "/mountPath")?;
        let dirs = env(container(deployment), "SSL_CERT_DIR").unwrap_or_default();
        ensure!(
            dirs.split(':').any(|dir| dir == folder)
                && dirs.split(':').any(|dir| dir == "/etc/ssl/certs"),
            "{caller}: SSL_CERT_DIR {dirs:?} must list the image's /etc/ssl/certs and {folder} \
             (where {key} is mounted)"
        );
    }
    Ok(())
}
