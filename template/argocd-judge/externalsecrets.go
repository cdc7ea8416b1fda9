package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// The component that makes both token Secrets from one remote secret.
const externalSecretsComponent = "deploy/components/external-secrets"

// checkExternalSecrets takes deploy/ with the External Secrets component as
// the operator would: its ExternalSecrets valid against the operator's CRD,
// and the template of Argo CD's Secret giving Argo CD the first token of a
// remote value that holds several during a rotation.
func checkExternalSecrets(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, externalSecretsComponent)); os.IsNotExist(err) {
		return nil
	}
	built, err := kustomizeWithComponent(dir, externalSecretsComponent)
	if err != nil {
		return err
	}
	objects, err := decodeObjects(built)
	if err != nil {
		return err
	}
	schema, err := externalSecrets.crd(dir, externalSecretCRD)
	if err != nil {
		return err
	}
	count, err := schema.validateAll(objects)
	if err != nil {
		return fmt.Errorf("%s: %w", externalSecretsComponent, err)
	}
	checked := 0
	for _, object := range objects {
		if object["kind"] != "ExternalSecret" {
			continue
		}
		token, ok := nested(object, "spec", "target", "template", "data", "token").(string)
		if !ok {
			continue
		}
		for remote, sent := range map[string]string{"new-token\nold-token\n": "new-token", "only-token": "only-token"} {
			rendered, err := renderExternalSecretTemplate(token, map[string]string{"token": remote})
			if err != nil {
				return fmt.Errorf("%s: %w", externalSecretsComponent, err)
			}
			if rendered != sent {
				return fmt.Errorf("%s: Argo CD's ExternalSecret turns %q into %q, not %q", externalSecretsComponent, remote, rendered, sent)
			}
		}
		checked++
	}
	if checked == 0 {
		return fmt.Errorf("%s: no ExternalSecret templates a token for Argo CD", externalSecretsComponent)
	}
	fmt.Printf("%s: %d ExternalSecrets valid against the operator's CRD (%s); Argo CD's gets the first token of a rotation\n",
		externalSecretsComponent, count, externalSecrets.version)
	return nil
}

// kustomizeWithComponent is `kubectl kustomize deploy` with a component
// added, from a throw-away overlay (kustomize takes only relative paths).
func kustomizeWithComponent(dir, component string) ([]byte, error) {
	overlay, err := os.MkdirTemp("", "argocd-judge-overlay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	absolute, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	deploy, err := filepath.Rel(overlay, filepath.Join(absolute, "deploy"))
	if err != nil {
		return nil, err
	}
	kustomization := fmt.Sprintf("resources:\n  - %s\ncomponents:\n  - %s\n", deploy, filepath.Join(deploy, strings.TrimPrefix(component, "deploy/")))
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		return nil, err
	}
	return output(overlay, "kubectl", "kustomize", ".")
}

// renderExternalSecretTemplate renders an ExternalSecret template
// (engineVersion v2) as the External Secrets Operator does (its
// pkg/template/v2: text/template with sprig's functions but env and
// expandenv, missingkey=error). Importing the operator's module would pull
// its Kubernetes versions into Argo CD's build.
func renderExternalSecretTemplate(text string, data map[string]string) (string, error) {
	functions := sprig.TxtFuncMap()
	delete(functions, "env")
	delete(functions, "expandenv")
	parsed, err := template.New("token").Option("missingkey=error").Funcs(functions).Parse(text)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := parsed.Execute(&out, data); err != nil {
		return "", err
	}
	return out.String(), nil
}

// nested is object[keys[0]][keys[1]]..., or nil.
func nested(object any, keys ...string) any {
	value := object
	for _, key := range keys {
		m, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		value = m[key]
	}
	return value
}
