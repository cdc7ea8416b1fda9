package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// An operator's release whose CRDs the project's objects are validated
// against: its Go module carries them, and the module proxy serves it with
// this checksum. None is a dependency of the judge (their Kubernetes
// versions would fight Argo CD's), only downloaded.
type operator struct {
	module, version, sum string
}

var (
	externalSecrets = operator{"github.com/external-secrets/external-secrets", "v0.16.2", "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68="}
	certManager     = operator{"github.com/cert-manager/cert-manager", "v1.21.2", "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68="}
	trustManager    = operator{"github.com/cert-manager/trust-manager", "v0.25.0", "h1:nGtkHH9wEacI5uACdsq8wqCKWsCw1PMrwHPJcrUFUXA="}
)

const externalSecretCRD = "config/crds/bases/external-secrets.io_externalsecrets.yaml"

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

// crd downloads the operator's module (once; Go keeps it) and loads the
// CRD at file in it.
func (o operator) crd(project, file string) (*schema, error) {
	module := o.module + "@" + o.version
	out, err := output(moduleDir(project), "go", "mod", "download", "-json", module)
	if err != nil {
		return nil, err
	}
	var download struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &download); err != nil {
		return nil, fmt.Errorf("go mod download %s: %w", module, err)
	}
	if download.Sum != o.sum {
		return nil, fmt.Errorf("%s: checksum %q, expected %q %s", module, download.Sum, o.sum, download.Error)
	}
	return loadSchema(download.Dir, file)
}
