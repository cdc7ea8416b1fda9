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
	kind       string
	apiVersion string
	validator  validation.SchemaCreateValidator
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
		return &schema{
			kind:       crd.Spec.Names.Kind,
			apiVersion: crd.Spec.Group + "/" + version.Name,
			validator:  validator,
		}, nil
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

// validateAll checks every object of the schema's kind among objects, as
// the API server would on create, and returns how many there were.
func (s *schema) validateAll(objects []map[string]any) (int, error) {
	count := 0
	for _, object := range objects {
		if object["kind"] != s.kind {
			continue
		}
		metadata, _ := object["metadata"].(map[string]any)
		if object["apiVersion"] != s.apiVersion {
			return count, fmt.Errorf("%s %v: apiVersion %v, but the CRD stores %s", s.kind, metadata["name"], object["apiVersion"], s.apiVersion)
		}
		if err := s.validate(object); err != nil {
			return count, fmt.Errorf("%s %v in %v: %w", s.kind, metadata["name"], metadata["namespace"], err)
		}
		count++
	}
	return count, nil
}
