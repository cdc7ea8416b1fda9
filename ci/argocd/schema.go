package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"sigs.k8s.io/yaml"
)

// schema checks objects against the openAPIV3Schema of one of Argo CD's
// CRDs, as the API server does on create.
type schema struct {
	kind      string
	validator validation.SchemaCreateValidator
}

func loadSchema(dir, file string) (*schema, error) {
	path := filepath.Join(dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, version := range crd.Spec.Versions {
		if !version.Storage || version.Schema == nil {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(
			version.Schema.OpenAPIV3Schema, &internal, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		validator, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &schema{kind: crd.Spec.Names.Kind, validator: validator}, nil
	}
	return nil, fmt.Errorf("%s: no stored version with a schema", path)
}

func (s *schema) validate(object map[string]any) error {
	errors := validation.ValidateCustomResource(nil, object, s.validator)
	if len(errors) > 0 {
		return fmt.Errorf("not a valid %s: %w", s.kind, errors.ToAggregate())
	}
	return nil
}
