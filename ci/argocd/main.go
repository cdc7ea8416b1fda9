// Command argocd-judge runs Argo CD's own code against a plugin: its HTTP
// proxy selection, its plugin generator, template renderer and
// ApplicationSet reconciler. It exits non-zero naming what Argo CD would do
// wrong with the plugin.
//
//	argocd-judge proxy URL...
//	argocd-judge project --dir DIR --binary FILE --crds DIR
//	argocd-judge application --dir DIR --crds DIR
//	argocd-judge validate CRD.yaml MANIFEST.yaml
//	argocd-judge eso-template TEMPLATE [KEY=VALUE]...
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

const usage = `usage:
  argocd-judge proxy URL...
      fails when Go's http.ProxyFromEnvironment, as Argo CD's client uses it,
      would send a URL to a proxy with NO_PROXY=.svc,.cluster.local
  argocd-judge project --dir DIR --binary FILE --crds DIR
      for a rendered project: its ConfigMap's baseUrl through the proxy check;
      deploy/argocd/application.yaml against the Application CRD and Argo
      CD's validation with its default project;
      its plugin binary started on loopback with a token as deploy/token.sh
      makes it; its example request through Argo CD's plugin client, which
      must get what preview prints, then as an ApplicationSet through Argo
      CD's reconciler; each ApplicationSet of deploy/examples through Argo CD's
      plugin generator, renderer and reconciler, with the ConfigMap of
      deploy/ (its baseUrl pointed at the plugin); then a rolling restart
      as Argo CD's client lives it
  argocd-judge application --dir DIR --crds DIR
      only the Application check of project
  argocd-judge validate CRD.yaml MANIFEST.yaml
      every object of the CRD's kind in the manifest against its schema
  argocd-judge eso-template TEMPLATE [KEY=VALUE]...
      an ExternalSecret template rendered as the External Secrets Operator
      renders it`

func main() {
	if len(os.Args) < 2 {
		fail(usage)
	}
	var err error
	switch os.Args[1] {
	case "proxy":
		err = proxyCommand(os.Args[2:])
	case "project":
		err = projectCommand(os.Args[2:])
	case "application":
		err = applicationCommand(os.Args[2:])
	case "validate":
		err = validateCommand(os.Args[2:])
	case "eso-template":
		err = esoTemplateCommand(os.Args[2:])
	default:
		fail(usage)
	}
	if err != nil {
		fail("error: " + err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}

func projectCommand(args []string) error {
	flags := flag.NewFlagSet("project", flag.ContinueOnError)
	dir := flags.String("dir", "", "the rendered project")
	binary := flags.String("binary", "", "its release binary")
	crds := flags.String("crds", "", "Argo CD's manifests/crds directory")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *binary == "" || *crds == "" || flags.NArg() > 0 {
		return fmt.Errorf("missing arguments\n%s", usage)
	}
	examples, err := filepath.Glob(filepath.Join(*dir, "deploy", "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		return errors.Join(fmt.Errorf("no ApplicationSet in %s/deploy/examples", *dir), err)
	}
	project, err := loadProject(*dir)
	if err != nil {
		return err
	}
	if err := proxyCommand(project.baseURLs()); err != nil {
		return err
	}
	checked, err := checkApplication(*dir, *crds)
	if err != nil {
		return err
	}
	fmt.Print(checked)
	plugin, err := startPlugin(*binary, *dir, project.pluginToken)
	if err != nil {
		return err
	}
	defer plugin.kill()
	request, err := plugin.exampleAsPreviewed()
	if err != nil {
		return fmt.Errorf("%w%s", err, plugin.logTail())
	}
	judge, err := newJudge(project, plugin.url, *crds)
	if err != nil {
		return err
	}
	if err := judge.exampleRequest(request); err != nil {
		return fmt.Errorf("%w%s", err, plugin.logTail())
	}
	for _, file := range examples {
		if err := judge.applicationSets(file); err != nil {
			return fmt.Errorf("%s: %w%s", file, err, plugin.logTail())
		}
	}
	plugin.kill()
	return rollingRestart(*binary, *dir, project.pluginToken)
}

func applicationCommand(args []string) error {
	flags := flag.NewFlagSet("application", flag.ContinueOnError)
	dir := flags.String("dir", "", "the rendered project")
	crds := flags.String("crds", "", "Argo CD's manifests/crds directory")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *crds == "" || flags.NArg() > 0 {
		return fmt.Errorf("missing arguments\n%s", usage)
	}
	checked, err := checkApplication(*dir, *crds)
	fmt.Print(checked)
	return err
}
