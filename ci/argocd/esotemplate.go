package main

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// esoTemplateCommand renders an ExternalSecret template (engineVersion v2)
// as the External Secrets Operator does (its pkg/template/v2: text/template
// with sprig's functions but env and expandenv, missingkey=error), with
// KEY=VALUE pairs as the remote data. Importing the operator's module would
// pull its Kubernetes versions into Argo CD's build.
func esoTemplateCommand(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: argocd-judge eso-template TEMPLATE [KEY=VALUE]...")
	}
	functions := sprig.TxtFuncMap()
	delete(functions, "env")
	delete(functions, "expandenv")
	parsed, err := template.New("token").Option("missingkey=error").Funcs(functions).Parse(args[0])
	if err != nil {
		return err
	}
	data := map[string]string{}
	for _, pair := range args[1:] {
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("%q is not KEY=VALUE", pair)
		}
		data[key] = value
	}
	var out bytes.Buffer
	if err := parsed.Execute(&out, data); err != nil {
		return err
	}
	fmt.Print(out.String())
	return nil
}
