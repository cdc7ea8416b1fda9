// Command argocd-judge runs Argo CD's own code against this plugin: its
// HTTP proxy selection, its plugin client, generators, template renderer
// and ApplicationSet reconciler. It exits non-zero naming what Argo CD
// would do wrong with the plugin. Run it from the project's root with
// argocd-judge/judge.sh (README.md in this folder).
//
//	argocd-judge project [--dir DIR] [--binary FILE]
//	argocd-judge application [--dir DIR]
//	argocd-judge external-secrets [--dir DIR]
//	argocd-judge proxy URL...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	log "github.com/sirupsen/logrus"
	ctrl "sigs.k8s.io/controller-runtime"
)

const usage = `usage:
  argocd-judge project [--dir DIR] [--binary FILE]
      everything below on the plugin project in DIR (default: .), whose
      release binary is FILE (default: cargo build --release --locked):
      its ConfigMap's baseUrl through the proxy check; the Application and
      External Secrets checks; the plugin started on loopback with the
      token deploy/token.sh makes; its example request through Argo CD's
      plugin client, which must get what preview prints, then as an
      ApplicationSet through Argo CD's reconciler; each ApplicationSet of
      deploy/examples through Argo CD's generators, renderer and
      reconciler, with the ConfigMap of deploy/ (its baseUrl pointed at
      the plugin); then a rolling restart as Argo CD's client lives it
  argocd-judge application [--dir DIR]
      only the check of deploy/argocd/application.yaml
  argocd-judge external-secrets [--dir DIR]
      only the check of deploy/components/external-secrets
  argocd-judge proxy URL...
      fails when Go's http.ProxyFromEnvironment, as Argo CD's client uses it,
      would send a URL to a proxy with NO_PROXY=.svc,.cluster.local`

func main() {
	// Argo CD logs each failure at length; the status carries its message.
	log.SetOutput(io.Discard)
	ctrl.SetLogger(logr.Discard())
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
	case "external-secrets":
		err = externalSecretsCommand(os.Args[2:])
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

// step prints what starts, and returns what prints how long it took.
func step(what string) func() {
	fmt.Printf("==> %s\n", what)
	start := time.Now()
	return func() {
		fmt.Printf("    done in %.1f s\n", time.Since(start).Seconds())
	}
}

func projectCommand(args []string) error {
	flags := flag.NewFlagSet("project", flag.ContinueOnError)
	dir := flags.String("dir", ".", "the plugin project")
	binary := flags.String("binary", "", "its release binary (default: cargo build --release --locked)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected %q\n%s", flags.Args(), usage)
	}
	examples, err := filepath.Glob(filepath.Join(*dir, "deploy", "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		return errors.Join(fmt.Errorf("no ApplicationSet in %s/deploy/examples", *dir), err)
	}
	crds, err := argoCDCRDs(*dir)
	if err != nil {
		return err
	}
	project, err := loadProject(*dir)
	if err != nil {
		return err
	}
	if err := proxyCommand(project.baseURLs()); err != nil {
		return err
	}
	if project.https() {
		// First: Go reads its roots once, at the first handshake.
		if project.tls, err = setUpTLS(*dir); err != nil {
			return err
		}
		defer project.tls.close()
	}
	checked, err := checkApplication(*dir, crds)
	if err != nil {
		return err
	}
	fmt.Print(checked)
	if err := checkExternalSecrets(*dir); err != nil {
		return err
	}
	if *binary == "" {
		if *binary, err = buildRelease(*dir); err != nil {
			return err
		}
	}
	settings, err := loadSettings(*dir)
	if err != nil {
		return err
	}
	defer settings.close()
	project.pluginEnv = settings.env

	plugin, err := startPlugin(*binary, project)
	if err != nil {
		return err
	}
	defer plugin.kill()
	request, err := plugin.exampleAsPreviewed()
	if err != nil {
		return fmt.Errorf("%w%s", err, plugin.logTail())
	}
	judge, err := newJudge(project, plugin, crds)
	if err != nil {
		return err
	}
	defer judge.close()
	if err := judge.exampleRequest(request); err != nil {
		return fmt.Errorf("%w%s", err, plugin.logTail())
	}
	for _, file := range examples {
		if err := judge.applicationSets(file); err != nil {
			return fmt.Errorf("%s: %w%s", file, err, plugin.logTail())
		}
	}
	plugin.kill()
	return rollingRestart(*binary, project)
}

// dirFlag parses the one flag of a single check's command: --dir.
func dirFlag(command string, args []string) (string, error) {
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	dir := flags.String("dir", ".", "the plugin project")
	if err := flags.Parse(args); err != nil {
		return "", err
	}
	if flags.NArg() > 0 {
		return "", fmt.Errorf("unexpected %q\n%s", flags.Args(), usage)
	}
	return *dir, nil
}

func externalSecretsCommand(args []string) error {
	dir, err := dirFlag("external-secrets", args)
	if err != nil {
		return err
	}
	return checkExternalSecrets(dir)
}

func applicationCommand(args []string) error {
	dir, err := dirFlag("application", args)
	if err != nil {
		return err
	}
	crds, err := argoCDCRDs(dir)
	if err != nil {
		return err
	}
	checked, err := checkApplication(dir, crds)
	fmt.Print(checked)
	return err
}
