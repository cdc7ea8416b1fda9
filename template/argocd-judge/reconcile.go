package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/argoproj/argo-cd/v3/applicationset/controllers"
	"github.com/argoproj/argo-cd/v3/applicationset/generators"
	appsetmetrics "github.com/argoproj/argo-cd/v3/applicationset/metrics"
	pluginclient "github.com/argoproj/argo-cd/v3/applicationset/services/plugin"
	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	argocommon "github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/db"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

// What a pull request generator yields for one pull request (Argo CD's
// names; every value a string, as that generator makes them).
var pullRequest = map[string]any{
	"number": "42", "branch": "feature-1", "branch_slug": "feature-1",
	"target_branch": "main", "target_branch_slug": "main",
	"head_sha": "6a8b3c1d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b", "head_short_sha": "6a8b3c1d",
	"head_short_sha_7": "6a8b3c1", "author": "octocat", "title": "A change",
}

// Values Argo CD renders when a template prints what it should not: raw
// JSON bytes (generator.input.parameters), a float64 in %e form, nil.
var misrendered = regexp.MustCompile(`\{\[\d+( \d+)*\]\}|\b\d(\.\d+)?e[+-]\d\d\b|<no value>|<nil>`)

type judge struct {
	configMaps  map[string]*corev1.ConfigMap
	secret      *corev1.Secret
	pluginURL   string   // where Argo CD reaches the plugin: through tap
	service     *service // forwards to the plugin
	tap         *tap     // what the plugin answered
	application *schema
	appSet      *schema
	// With tls: the plugin, whose certificate a check replaces, once.
	plugin          *plugin
	tls             *tlsSetup
	untrustedJudged bool
}

func newJudge(p *project, plugin *plugin, crds string) (*judge, error) {
	j := &judge{configMaps: p.configMaps, secret: p.secret}
	// Over TLS the tap would keep ciphertext: the keys are not named.
	if p.tls == nil {
		j.tap = &tap{}
	} else {
		j.plugin, j.tls = plugin, p.tls
	}
	var err error
	if j.service, err = newService(hostPort(plugin.url), j.tap); err != nil {
		return nil, err
	}
	j.pluginURL = scheme(plugin.url) + j.service.listener.Addr().String()
	if j.application, err = loadSchema(crds, "application-crd.yaml"); err != nil {
		return nil, err
	}
	if j.appSet, err = loadSchema(crds, "applicationset-crd.yaml"); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *judge) close() {
	_ = j.service.listener.Close()
}

// returned names the keys of the parameter sets the plugin answered since
// the last reconcile began: what an example's template can read.
func (j *judge) returned() string {
	if j.tap == nil {
		return "run preview to see what the generator answers (over TLS the judge does not read the replies)"
	}
	keys := j.tap.keys()
	if len(keys) == 0 {
		return "the generator answered no parameter set"
	}
	return "the generator answered parameter sets with the keys " + strings.Join(keys, ", ")
}

// decodeObjects reads YAML documents or a stream of JSON objects.
func decodeObjects(data []byte) ([]map[string]any, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objects []map[string]any
	for {
		var object map[string]any
		if err := decoder.Decode(&object); errors.Is(err, io.EOF) {
			return objects, nil
		} else if err != nil {
			return nil, err
		}
		if object != nil {
			objects = append(objects, object)
		}
	}
}

// applicationSets runs every ApplicationSet of a file through Argo CD.
func (j *judge) applicationSets(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	objects, err := decodeObjects(data)
	if err != nil {
		return err
	}
	found := 0
	for _, object := range objects {
		if object["kind"] != "ApplicationSet" {
			continue
		}
		found++
		if err := j.appSet.validate(object); err != nil {
			return err
		}
		for _, note := range replaceOtherGenerators(object) {
			fmt.Println("  " + note)
		}
		var appSet v1alpha1.ApplicationSet
		if err := convert(object, &appSet); err != nil {
			return err
		}
		if err := j.lifecycle(&appSet); err != nil {
			return fmt.Errorf("ApplicationSet %s: %w", appSet.Name, err)
		}
	}
	if found == 0 {
		return errors.New("no ApplicationSet")
	}
	return nil
}

// exampleRequest makes an ApplicationSet of the plugin's example request
// (which any generator answers with at least one set): one Application per
// parameter set, named by a hash of the set, so it suits any generator.
func (j *judge) exampleRequest(request *pluginclient.ServiceRequest) error {
	var configMaps []string
	for name := range j.configMaps {
		configMaps = append(configMaps, name)
	}
	sort.Strings(configMaps)
	appSet := &v1alpha1.ApplicationSet{
		ObjectMeta: metav1.ObjectMeta{Name: request.ApplicationSetName, Namespace: j.secret.Namespace},
		Spec: v1alpha1.ApplicationSetSpec{
			GoTemplate:        true,
			GoTemplateOptions: []string{"missingkey=error"},
			Generators: []v1alpha1.ApplicationSetGenerator{{Plugin: &v1alpha1.PluginGenerator{
				ConfigMapRef: v1alpha1.PluginConfigMapRef{Name: configMaps[0]},
				Input:        v1alpha1.PluginInput{Parameters: request.Input.Parameters},
			}}},
			Template: v1alpha1.ApplicationSetTemplate{
				ApplicationSetTemplateMeta: v1alpha1.ApplicationSetTemplateMeta{
					Name: `example-{{ omit . "generator" | toJson | sha256sum | trunc 12 }}`,
				},
				Spec: v1alpha1.ApplicationSpec{
					Project: "default",
					Source: &v1alpha1.ApplicationSource{
						RepoURL: "https://github.com/argoproj/argocd-example-apps.git",
						Path:    "guestbook",
					},
					Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "default"},
				},
			},
		},
	}
	if err := j.lifecycle(appSet); err != nil {
		return fmt.Errorf("the example request: %w", err)
	}
	return nil
}

// replaceOtherGenerators puts a list of one pull request where an
// ApplicationSet combines the plugin with a generator that needs the
// network (a pull request generator, say).
func replaceOtherGenerators(appSet map[string]any) []string {
	var notes []string
	var walk func(generators any)
	walk = func(generators any) {
		list, _ := generators.([]any)
		for _, item := range list {
			generator, _ := item.(map[string]any)
			for kind, body := range generator {
				switch kind {
				case "plugin", "list", "selector":
				case "matrix", "merge":
					inner, _ := body.(map[string]any)
					walk(inner["generators"])
				default:
					delete(generator, kind)
					generator["list"] = map[string]any{"elements": []any{pullRequest}}
					notes = append(notes, fmt.Sprintf("%s generator replaced by a list of one pull request", kind))
				}
			}
		}
	}
	spec, _ := appSet["spec"].(map[string]any)
	walk(spec["generators"])
	return notes
}

// world is a fake cluster holding Argo CD's objects, and its reconciler.
type world struct {
	client     client.Client
	reconciler *controllers.ApplicationSetReconciler
	appSet     types.NamespacedName
	stop       chan struct{} // ends its informers
}

func (w *world) close() {
	close(w.stop)
}

func (j *judge) world(appSet *v1alpha1.ApplicationSet) (*world, error) {
	namespace := j.secret.Namespace
	if appSet.Namespace == "" {
		appSet.Namespace = namespace
	}
	objects := []client.Object{appSet, j.secret.DeepCopy(), &v1alpha1.AppProject{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace},
		Spec: v1alpha1.AppProjectSpec{
			SourceRepos:  []string{"*"},
			Destinations: []v1alpha1.ApplicationDestination{{Server: "*", Namespace: "*"}},
		},
	}}
	for _, name := range configMapRefs(appSet) {
		configMap, ok := j.configMaps[name]
		if !ok {
			return nil, fmt.Errorf("its plugin generator names ConfigMap %s, which the install does not have", name)
		}
		configMap = configMap.DeepCopy()
		configMap.Data["baseUrl"] = j.pluginURL
		objects = append(objects, configMap)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).
		WithStatusSubresource(appSet).
		WithIndex(&v1alpha1.Application{}, ".metadata.controller", ownerIndex).Build()
	kube := argoCDKube(namespace)
	ctx := context.Background()
	// Argo CD's cluster secrets, as the controller watches them (none: the
	// in-cluster destination only).
	clusters, err := settings.NewClusterInformer(kube, namespace)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	go clusters.Run(stop)
	if !cache.WaitForCacheSync(stop, clusters.HasSynced) {
		close(stop)
		return nil, errors.New("Argo CD's cluster informer never synced")
	}
	reconciler := &controllers.ApplicationSetReconciler{
		Client:          c,
		Scheme:          scheme,
		Renderer:        &utils.Render{},
		Recorder:        &record.FakeRecorder{},
		Generators:      generators.GetGenerators(ctx, c, kube, namespace, nil, nil, generators.SCMConfig{}, clusters),
		ClusterInformer: clusters,
		ArgoDB:          db.NewDB(namespace, settings.NewSettingsManager(ctx, kube, namespace), kube),
		KubeClientset:   kube,
		Policy:          v1alpha1.ApplicationsSyncPolicySync,
		ArgoCDNamespace: namespace,
		Metrics:         appsetmetrics.NewFakeAppsetMetrics(),
	}
	return &world{client: c, reconciler: reconciler, appSet: client.ObjectKeyFromObject(appSet), stop: stop}, nil
}

// argoCDKube is a fake cluster holding what Argo CD's settings and database
// read in its namespace: argocd-cm and argocd-secret.
func argoCDKube(namespace string) *kubefake.Clientset {
	return kubefake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: argocommon.ArgoCDConfigMapName, Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"},
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Name: argocommon.ArgoCDSecretName, Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"},
		}, Data: map[string][]byte{"server.secretkey": []byte("x")}},
	)
}

// The index Argo CD's controller registers on Applications (its own is unexported).
func ownerIndex(object client.Object) []string {
	owner := metav1.GetControllerOf(object)
	if owner == nil || owner.Kind != "ApplicationSet" {
		return nil
	}
	return []string{owner.Name}
}

func configMapRefs(appSet *v1alpha1.ApplicationSet) []string {
	var names []string
	for _, generator := range appSet.Spec.Generators {
		if generator.Plugin != nil {
			names = append(names, generator.Plugin.ConfigMapRef.Name)
		}
		var nested []v1alpha1.ApplicationSetNestedGenerator
		if generator.Matrix != nil {
			nested = append(nested, generator.Matrix.Generators...)
		}
		if generator.Merge != nil {
			nested = append(nested, generator.Merge.Generators...)
		}
		for _, inner := range nested {
			if inner.Plugin != nil {
				names = append(names, inner.Plugin.ConfigMapRef.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// reconcile runs one reconcile and returns the Applications the
// ApplicationSet owns, and the message of its ErrorOccurred condition.
func (w *world) reconcile() ([]v1alpha1.Application, string, error) {
	ctx := context.Background()
	if _, err := w.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: w.appSet}); err != nil {
		return nil, "", fmt.Errorf("the reconciler failed: %w", err)
	}
	var appSet v1alpha1.ApplicationSet
	if err := w.client.Get(ctx, w.appSet, &appSet); err != nil {
		return nil, "", err
	}
	message := ""
	for _, condition := range appSet.Status.Conditions {
		if condition.Type == v1alpha1.ApplicationSetConditionErrorOccurred && condition.Status == v1alpha1.ApplicationSetConditionStatusTrue {
			message = condition.Message
		}
	}
	var list v1alpha1.ApplicationList
	if err := w.client.List(ctx, &list, client.InNamespace(w.appSet.Namespace)); err != nil {
		return nil, "", err
	}
	var owned []v1alpha1.Application
	for _, app := range list.Items {
		// Being deleted counts as deleted (its finalizer is the application
		// controller's to remove).
		if app.DeletionTimestamp == nil && slices.Contains(ownerIndex(&app), w.appSet.Name) {
			owned = append(owned, app)
		}
	}
	return owned, message, nil
}

func names(apps []v1alpha1.Application) string {
	var names []string
	for _, app := range apps {
		names = append(names, app.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lifecycle is what Argo CD does with the plugin over an ApplicationSet's
// life: it creates the Applications; when the plugin fails, it keeps them
// and shows the plugin's message; when a plugin answers an empty list, it
// deletes them. An ApplicationSet that does not suit the generator (its
// input refused, its template reading a key the answers lack) fails with
// Argo CD's status and the keys the generator did answer.
func (j *judge) lifecycle(appSet *v1alpha1.ApplicationSet) error {
	w, err := j.world(appSet)
	if err != nil {
		return err
	}
	defer w.close()
	if j.tap != nil {
		j.tap.forget()
	}
	apps, message, err := w.reconcile()
	if err != nil {
		return err
	}
	if message != "" {
		return fmt.Errorf("Argo CD's status: %s\n  (%s; the ApplicationSet and the generator must agree)", message, j.returned())
	}
	if len(apps) == 0 {
		return errors.New("Argo CD created no Application: the plugin's 2xx reply held no parameter sets (Argo CD reads {\"output\": {\"parameters\": [...]}}, any other shape is an empty list)")
	}
	for _, app := range apps {
		if err := j.checkApplication(app); err != nil {
			return err
		}
	}
	fmt.Printf("ApplicationSet %s: Argo CD created %s (valid Applications)\n", appSet.Name, names(apps))

	// The plugin fails (Argo CD sends a token it does not accept).
	secret := j.secret.DeepCopy()
	for key := range secret.Data {
		secret.Data[key] = []byte("not-the-plugins-token")
	}
	for key := range secret.StringData {
		secret.StringData[key] = "not-the-plugins-token"
	}
	if err := w.client.Update(context.Background(), secret); err != nil {
		return err
	}
	kept, message, err := w.reconcile()
	if err != nil {
		return err
	}
	if names(kept) != names(apps) {
		return fmt.Errorf("after a request the plugin refused (wrong token), Argo CD kept [%s] of [%s]: the plugin answered a failure with a 2xx", names(kept), names(apps))
	}
	if !strings.Contains(message, "API error with status code 403") {
		return fmt.Errorf("after a request with a wrong token, the status says %q, not the plugin's 403", message)
	}
	fmt.Printf("ApplicationSet %s, the plugin failing: Argo CD kept them; its status: %s\n", appSet.Name, message)

	// Why a failure must never be a 2xx: an empty answer deletes them all.
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"output":{"parameters":[]}}`)
	}))
	defer empty.Close()
	if err := w.client.Update(context.Background(), j.secret.DeepCopy()); err != nil {
		return err
	}
	// With tls, once: a certificate Argo CD does not trust fails closed too.
	if j.tls != nil && !j.untrustedJudged {
		j.untrustedJudged = true
		if err := j.untrustedCertificate(w, appSet.Name, apps); err != nil {
			return err
		}
	}
	for _, name := range configMapRefs(appSet) {
		var configMap corev1.ConfigMap
		key := types.NamespacedName{Namespace: j.secret.Namespace, Name: name}
		if err := w.client.Get(context.Background(), key, &configMap); err != nil {
			return err
		}
		configMap.Data["baseUrl"] = empty.URL
		if err := w.client.Update(context.Background(), &configMap); err != nil {
			return err
		}
	}
	left, message, err := w.reconcile()
	if err != nil {
		return err
	}
	if len(left) != 0 {
		return fmt.Errorf("an empty answer left %s (status: %q)", names(left), message)
	}
	fmt.Printf("ApplicationSet %s, a plugin answering an empty list: Argo CD deleted %s\n", appSet.Name, names(apps))
	return nil
}

// checkApplication validates an Application against its CRD and looks for
// values a template printed as Argo CD should not.
func (j *judge) checkApplication(app v1alpha1.Application) error {
	object, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&app)
	if err != nil {
		return err
	}
	object["apiVersion"] = "argoproj.io/v1alpha1"
	object["kind"] = "Application"
	if err := j.application.validate(object); err != nil {
		return fmt.Errorf("Application %s: %w", app.Name, err)
	}
	var found []string
	var walk func(path string, value any)
	walk = func(path string, value any) {
		switch value := value.(type) {
		case map[string]any:
			for key, item := range value {
				walk(path+"."+key, item)
			}
		case []any:
			for i, item := range value {
				walk(fmt.Sprintf("%s[%d]", path, i), item)
			}
		case string:
			if match := misrendered.FindString(value); match != "" {
				found = append(found, fmt.Sprintf("%s is %q", strings.TrimPrefix(path, "."), value))
			}
		}
	}
	delete(object, "status")
	walk("", object)
	if len(found) > 0 {
		sort.Strings(found)
		return fmt.Errorf("Application %s: the template printed raw JSON bytes, a float64 or nil: %s (see \"How Argo CD treats your answer\" in the README)", app.Name, strings.Join(found, "; "))
	}
	return nil
}
