package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// The External Secrets Operator release whose CRD the project's
// ExternalSecrets are validated against: its Go module carries it, and the
// module proxy serves it with this checksum. It is no dependency of the
// judge (its Kubernetes versions would fight Argo CD's), only downloaded.
const (
	externalSecretsModule  = "github.com/external-secrets/external-secrets"
	externalSecretsVersion = "v0.16.2"
	externalSecretsSum     = "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68="
	externalSecretCRD      = "config/crds/bases/external-secrets.io_externalsecrets.yaml"
)

// moduleDir is this judge's Go module in the project: Go runs there, so
// it reads the module's go.mod and go.sum.
func moduleDir(project string) string {
	return filepath.Join(project, "argocd-judge")
}

// argoCDCRDs is the folder of Argo CD's CRDs in the argo-cd module the
// judge is built with.
func argoCDCRDs(project string) (string, error) {
	out, err := output(moduleDir(project), "go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v3")
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "manifests", "crds"), nil
}

// externalSecretCRDFile downloads the operator's module (once; Go keeps it)
// and returns its ExternalSecret CRD.
func externalSecretCRDFile(project string) (string, error) {
	module := externalSecretsModule + "@" + externalSecretsVersion
	out, err := output(moduleDir(project), "go", "mod", "download", "-json", module)
	if err != nil {
		return "", err
	}
	var download struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &download); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if download.Sum != externalSecretsSum {
		return "", fmt.Errorf("%s: checksum %q, expected %q %s", module, download.Sum, externalSecretsSum, download.Error)
	}
	return filepath.Join(download.Dir, externalSecretCRD), nil
}
