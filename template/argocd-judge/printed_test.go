package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/argoproj/argo-cd/v3/applicationset/generators"
	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// printed is a value a plugin returns and what an ApplicationSet's template
// prints for it: testdata/printed.json, which plugin-server's own Go
// printing (go_print.rs) and the README's statement about numbers follow.
type printed struct {
	Returned   json.RawMessage `json:"returned"`
	GoTemplate string          `json:"goTemplate"`
	Flat       *string         `json:"flat"`
}

// TestPrinted runs each value through Argo CD's plugin generator (its
// client decodes the reply) and renderer, in goTemplate and flat mode.
func TestPrinted(t *testing.T) {
	data, err := os.ReadFile("testdata/printed.json")
	if err != nil {
		t.Fatal(err)
	}
	var table []printed
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	for _, row := range table {
		for _, goTemplate := range []bool{true, false} {
			want, template := row.GoTemplate, "{{ .v }}"
			if !goTemplate {
				if row.Flat == nil {
					continue
				}
				want, template = *row.Flat, "{{v}}"
			}
			got, err := render(row.Returned, goTemplate, template)
			if err != nil {
				t.Fatalf("%s (goTemplate %v): %v", row.Returned, goTemplate, err)
			}
			if got != want {
				t.Errorf("%s (goTemplate %v): Argo CD prints %q, the table says %q", row.Returned, goTemplate, got, want)
			}
		}
	}
}

// render is what Argo CD's template prints for the key `v` of a plugin
// that answers with the single set {"v": returned}.
func render(returned json.RawMessage, goTemplate bool, template string) (string, error) {
	plugin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"output":{"parameters":[{"v":%s}]}}`, returned)
	}))
	defer plugin.Close()
	const namespace = "argocd"
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return "", err
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "plugin", Namespace: namespace},
			Data:       map[string]string{"baseUrl": plugin.URL, "token": "$plugin:token"},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "plugin", Namespace: namespace},
			Data:       map[string][]byte{"token": []byte("t")},
		},
	).Build()
	generator := &v1alpha1.ApplicationSetGenerator{Plugin: &v1alpha1.PluginGenerator{
		ConfigMapRef: v1alpha1.PluginConfigMapRef{Name: "plugin"},
	}}
	appSet := &v1alpha1.ApplicationSet{
		ObjectMeta: metav1.ObjectMeta{Name: "printed", Namespace: namespace},
		Spec:       v1alpha1.ApplicationSetSpec{GoTemplate: goTemplate, Generators: []v1alpha1.ApplicationSetGenerator{*generator}},
	}
	sets, err := generators.NewPluginGenerator(c, namespace).GenerateParams(generator, appSet, c)
	if err != nil {
		return "", err
	}
	if len(sets) != 1 {
		return "", fmt.Errorf("%d parameter sets", len(sets))
	}
	return (&utils.Render{}).Replace(template, sets[0], goTemplate, nil)
}
