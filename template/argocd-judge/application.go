package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argoutil "github.com/argoproj/argo-cd/v3/util/argo"
	"github.com/argoproj/argo-cd/v3/util/db"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

// applicationFile is the Application that lets Argo CD install the plugin.
const applicationFile = "deploy/argocd/application.yaml"

// checkApplication takes the project's Application as Argo CD would: valid
// against the Application CRD, decoded strictly into Argo CD's type, its
// source and destination permitted by the default AppProject (as Argo CD
// creates it) with Argo CD's own validation, every object of its source
// path a kind that project may sync, and the Application itself not among
// them. It returns what it checked.
func checkApplication(dir, crds string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, applicationFile))
	if err != nil {
		return "", err
	}
	var object map[string]any
	if err := yaml.Unmarshal(data, &object); err != nil {
		return "", fmt.Errorf("%s: %w", applicationFile, err)
	}
	applications, err := loadSchema(crds, "application-crd.yaml")
	if err != nil {
		return "", err
	}
	if err := applications.validate(object); err != nil {
		return "", fmt.Errorf("%s: %w", applicationFile, err)
	}
	var app v1alpha1.Application
	if err := yaml.UnmarshalStrict(data, &app); err != nil {
		return "", fmt.Errorf("%s: %w", applicationFile, err)
	}
	if app.Spec.Project != v1alpha1.DefaultAppProjectName {
		return "", fmt.Errorf("%s: project %q: the check knows only Argo CD's default project", applicationFile, app.Spec.Project)
	}
	// Argo CD's default project (server.initializeDefaultProject).
	project := &v1alpha1.AppProject{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultAppProjectName, Namespace: app.Namespace},
		Spec: v1alpha1.AppProjectSpec{
			SourceRepos:              []string{"*"},
			Destinations:             []v1alpha1.ApplicationDestination{{Server: "*", Namespace: "*"}},
			ClusterResourceWhitelist: []v1alpha1.ClusterResourceRestrictionItem{{Group: "*", Kind: "*"}},
		},
	}
	kube := argoCDKube(app.Namespace)
	ctx := context.Background()
	argoDB := db.NewDB(app.Namespace, settings.NewSettingsManager(ctx, kube, app.Namespace), kube)
	conditions, err := argoutil.ValidatePermissions(ctx, &app.Spec, project, argoDB)
	if err != nil {
		return "", fmt.Errorf("%s: %w", applicationFile, err)
	}
	if len(conditions) > 0 {
		return "", fmt.Errorf("%s: Argo CD refuses it: %s", applicationFile, conditions[0].Message)
	}

	source := app.Spec.GetSource()
	built, err := output(dir, "kubectl", "kustomize", source.Path)
	if err != nil {
		return "", fmt.Errorf("%s: its source path: %w", applicationFile, err)
	}
	objects, err := decodeObjects(built)
	if err != nil {
		return "", err
	}
	var deploymentNamespace string
	for _, object := range objects {
		kind, _ := object["kind"].(string)
		metadata, _ := object["metadata"].(map[string]any)
		namespace, _ := metadata["namespace"].(string)
		name, _ := metadata["name"].(string)
		group := ""
		if apiVersion, _ := object["apiVersion"].(string); apiVersion != "" {
			group = k8sschema.FromAPIVersionAndKind(apiVersion, kind).Group
		}
		if kind == "Application" && group == "argoproj.io" {
			return "", fmt.Errorf("%s: kubectl kustomize %s holds an Application: applying it would apply the Application too", applicationFile, source.Path)
		}
		if !project.IsGroupKindNamePermitted(k8sschema.GroupKind{Group: group, Kind: kind}, name, namespace != "") {
			return "", fmt.Errorf("%s: the default project may not sync %s", applicationFile, kind)
		}
		if kind == "Deployment" {
			deploymentNamespace = namespace
		}
	}
	if deploymentNamespace != app.Spec.Destination.Namespace {
		return "", fmt.Errorf("%s: destination namespace %q, but the plugin runs in %q", applicationFile, app.Spec.Destination.Namespace, deploymentNamespace)
	}
	return fmt.Sprintf("%s: valid, accepted by Argo CD's default project; syncs %d objects of %s at %s from %s\n",
		applicationFile, len(objects), source.Path, source.TargetRevision, source.RepoURL), nil
}
