package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
)

// What a plugin rendered with tls needs from the judge: its cert-manager
// objects and trust-manager's Bundle checked against the operators' CRDs;
// Go's roots set as deploy/components/argocd-trust sets the controller's
// (SSL_CERT_DIR: the system's folder and the folder the CA is mounted at);
// a certificate for the plugin from a CA there; and a second CA Argo CD
// does not trust, to show that the controller then fails closed.
const (
	trustComponent = "deploy/components/argocd-trust"
	trustExample   = "deploy/argocd-trust-example"
	issuerSwap     = "deploy/components/cluster-issuer"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// keyPair is a certificate and its key, in PEM.
type keyPair struct {
	cert, key []byte
}

func newCA(name string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue makes a serving certificate for 127.0.0.1, as cert-manager makes
// one for the Service's host.
func (ca *testCA) issue() (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return keyPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// tlsSetup is the run's trusted and untrusted CAs and the folder of the
// controller's mounted CA.
type tlsSetup struct {
	trusted, untrusted *testCA
	dir                string
}

func (t *tlsSetup) close() {
	_ = os.RemoveAll(t.dir)
}

// setUpTLS checks the project's TLS objects and makes this process's Go
// trust what the controller would: it must run before any TLS handshake
// (Go reads its roots once).
func setUpTLS(project string) (*tlsSetup, error) {
	trustDirs, mounted, key, err := checkTLSObjects(project)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "argocd-judge-tls-")
	if err != nil {
		return nil, err
	}
	setup := &tlsSetup{dir: dir}
	if setup.trusted, err = newCA("the plugin's CA"); err == nil {
		setup.untrusted, err = newCA("a CA Argo CD does not trust")
	}
	if err != nil {
		setup.close()
		return nil, err
	}
	// The Bundle's ConfigMap, as the kubelet mounts it.
	folder := filepath.Join(dir, "mounted-ca")
	if err := os.MkdirAll(folder, 0o700); err != nil {
		setup.close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(folder, key), setup.trusted.pem, 0o600); err != nil {
		setup.close()
		return nil, err
	}
	dirs := strings.Split(trustDirs, ":")
	for i, d := range dirs {
		if d == mounted {
			dirs[i] = folder
		}
	}
	_ = os.Unsetenv("SSL_CERT_FILE")
	if err := os.Setenv("SSL_CERT_DIR", strings.Join(dirs, ":")); err != nil {
		setup.close()
		return nil, err
	}
	fmt.Printf("%s: Argo CD's client trusts the plugin's CA with SSL_CERT_DIR=%s (%s mounted at %s)\n",
		trustComponent, trustDirs, key, mounted)
	return setup, nil
}

// checkTLSObjects validates the Certificates and Issuers of deploy/ (and
// with components/cluster-issuer) against cert-manager's CRDs, and the
// Bundle of the argocd-trust component against trust-manager's; it returns
// the controller's SSL_CERT_DIR, where the CA is mounted, and its file.
func checkTLSObjects(project string) (string, string, string, error) {
	certificate, err := certManager.crd(project, "deploy/crds/cert-manager.io_certificates.yaml")
	if err != nil {
		return "", "", "", err
	}
	issuer, err := certManager.crd(project, "deploy/crds/cert-manager.io_issuers.yaml")
	if err != nil {
		return "", "", "", err
	}
	bundle, err := trustManager.crd(project, "deploy/crds/trust.cert-manager.io_bundles.yaml")
	if err != nil {
		return "", "", "", err
	}
	install, err := output(project, "kubectl", "kustomize", "deploy")
	if err != nil {
		return "", "", "", err
	}
	swapped, err := kustomizeWithComponent(project, issuerSwap)
	if err != nil {
		return "", "", "", err
	}
	for _, built := range [][]byte{install, swapped} {
		objects, err := decodeObjects(built)
		if err != nil {
			return "", "", "", err
		}
		for _, s := range []*schema{certificate, issuer} {
			if _, err := s.validateAll(objects); err != nil {
				return "", "", "", err
			}
		}
	}
	trust, err := output(project, "kubectl", "kustomize", trustExample)
	if err != nil {
		return "", "", "", err
	}
	objects, err := decodeObjects(trust)
	if err != nil {
		return "", "", "", err
	}
	if count, err := bundle.validateAll(objects); err != nil || count != 1 {
		return "", "", "", errors.Join(fmt.Errorf("%s: %d Bundles", trustComponent, count), err)
	}
	var configMap, key string
	for _, object := range objects {
		if object["kind"] == "Bundle" {
			configMap, _ = nested(object, "metadata", "name").(string)
			key, _ = nested(object, "spec", "target", "configMap", "key").(string)
		}
	}
	for _, object := range objects {
		if object["kind"] != "Deployment" || nested(object, "metadata", "name") != "argocd-applicationset-controller" {
			continue
		}
		pod, _ := nested(object, "spec", "template", "spec").(map[string]any)
		volume := ""
		volumes, _ := pod["volumes"].([]any)
		for _, v := range volumes {
			if nested(v, "configMap", "name") == configMap {
				volume, _ = nested(v, "name").(string)
			}
		}
		containers, _ := pod["containers"].([]any)
		if volume == "" || len(containers) == 0 {
			break
		}
		var dirs, mounted string
		env, _ := nested(containers[0], "env").([]any)
		for _, e := range env {
			if nested(e, "name") == "SSL_CERT_DIR" {
				dirs, _ = nested(e, "value").(string)
			}
		}
		mounts, _ := nested(containers[0], "volumeMounts").([]any)
		for _, m := range mounts {
			if nested(m, "name") == volume {
				mounted, _ = nested(m, "mountPath").(string)
			}
		}
		fmt.Printf("%s: its Certificates, Issuers and Bundle valid against cert-manager's (%s) and trust-manager's (%s) CRDs\n",
			trustComponent, certManager.version, trustManager.version)
		return dirs, mounted, key, nil
	}
	return "", "", "", fmt.Errorf("%s: the ApplicationSet controller does not mount the Bundle's ConfigMap %s", trustComponent, configMap)
}

// servedCertificate is what the plugin at addr serves a new handshake.
func servedCertificate(addr string) ([]byte, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // #nosec G402 -- reads the certificate, sends nothing
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw, nil
}

// serve writes pair where the plugin reads its certificate, and waits until
// new handshakes get it (the plugin re-reads its files every 2 s).
func (p *plugin) serve(pair keyPair) error {
	if err := os.WriteFile(p.keyFile, pair.key, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(p.certFile, pair.cert, 0o600); err != nil {
		return err
	}
	block, _ := pem.Decode(pair.cert)
	for deadline := time.Now().Add(15 * time.Second); ; {
		served, err := servedCertificate(strings.TrimPrefix(p.url, "https://"))
		if err == nil && bytes.Equal(served, block.Bytes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the plugin did not serve its renewed certificate within 15 s (%v)%s", err, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// untrustedCertificate is a plugin whose certificate comes from a CA Argo
// CD does not trust (the argocd-trust component left out, another CA
// issuing): the controller must keep the ApplicationSet's Applications
// and show Go's certificate error. Then the trusted certificate again.
func (j *judge) untrustedCertificate(w *world, appSet string, apps []v1alpha1.Application) error {
	stranger, err := j.tls.untrusted.issue()
	if err != nil {
		return err
	}
	trusted, err := os.ReadFile(j.plugin.certFile)
	if err != nil {
		return err
	}
	trustedKey, err := os.ReadFile(j.plugin.keyFile)
	if err != nil {
		return err
	}
	if err := j.plugin.serve(stranger); err != nil {
		return err
	}
	// New connections, as after a restart of the controller.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	kept, message, err := w.reconcile()
	if err != nil {
		return err
	}
	if names(kept) != names(apps) {
		return fmt.Errorf("with a certificate Argo CD does not trust, Argo CD kept [%s] of [%s]", names(kept), names(apps))
	}
	if !strings.Contains(message, "x509: certificate signed by unknown authority") {
		return fmt.Errorf("with a certificate Argo CD does not trust, the status says %q, not Go's certificate error", message)
	}
	fmt.Printf("ApplicationSet %s, the plugin's certificate from a CA Argo CD does not trust: Argo CD kept them; its status: %s\n", appSet, message)
	if err := j.plugin.serve(keyPair{cert: trusted, key: trustedKey}); err != nil {
		return err
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	again, message, err := w.reconcile()
	if err != nil {
		return err
	}
	if names(again) != names(apps) || message != "" {
		return fmt.Errorf("after the trusted certificate came back, Argo CD has [%s] (status %q)", names(again), message)
	}
	fmt.Printf("ApplicationSet %s, the trusted certificate renewed in place: Argo CD reached the plugin again without a restart\n", appSet)
	return nil
}
