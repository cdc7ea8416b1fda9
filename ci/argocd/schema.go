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

// validateCommand checks every object of the CRD's kind in a manifest file
// against the CRD's stored version, as the API server would on create.
func validateCommand(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: argocd-judge validate CRD.yaml MANIFEST.yaml")
	}
	s, err := loadSchema(filepath.Dir(args[0]), filepath.Base(args[0]))
	if err != nil {
		return err
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	objects, err := decodeObjects(data)
	if err != nil {
		return fmt.Errorf("%s: %w", args[1], err)
	}
	count := 0
	for _, object := range objects {
		if object["kind"] != s.kind {
			continue
		}
		metadata, _ := object["metadata"].(map[string]any)
		if object["apiVersion"] != s.apiVersion {
			return fmt.Errorf("%s %v: apiVersion %v, but the CRD stores %s", s.kind, metadata["name"], object["apiVersion"], s.apiVersion)
		}
		if err := s.validate(object); err != nil {
			return fmt.Errorf("%s %v in %v: %w", s.kind, metadata["name"], metadata["namespace"], err)
		}
		count++
	}
	fmt.Printf("%d %s valid against %s\n", count, s.kind, filepath.Base(args[0]))
	return nil
}
