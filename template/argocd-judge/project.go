package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// project is what a rendered project gives Argo CD: the plugin ConfigMaps of
// its install, and the token in the two Secrets deploy/token.sh makes.
type project struct {
	dir         string
	configMaps  map[string]*corev1.ConfigMap
	secret      *corev1.Secret // Argo CD's side
	pluginToken []byte
	pluginEnv   []string  // the author's settings (judge.env)
	tls         *tlsSetup // when the plugin serves HTTPS
}

func loadProject(dir string) (*project, error) {
	install, err := output(dir, "kubectl", "kustomize", "deploy")
	if err != nil {
		return nil, err
	}
	objects, err := decodeObjects(install)
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize deploy: %w", err)
	}
	p := &project{dir: dir, configMaps: map[string]*corev1.ConfigMap{}}
	for _, object := range objects {
		if object["kind"] != "ConfigMap" {
			continue
		}
		var configMap corev1.ConfigMap
		if err := convert(object, &configMap); err != nil {
			return nil, err
		}
		if _, ok := configMap.Data["baseUrl"]; ok {
			p.configMaps[configMap.Name] = &configMap
		}
	}
	if len(p.configMaps) == 0 {
		return nil, fmt.Errorf("%s: deploy/ has no ConfigMap with a baseUrl", dir)
	}
	printed, err := output(dir, "bash", filepath.Join("deploy", "token.sh"), "print")
	if err != nil {
		return nil, err
	}
	secrets, err := decodeObjects(printed)
	if err != nil || len(secrets) != 2 {
		return nil, fmt.Errorf("deploy/token.sh print made %d objects, not the plugin's Secret and Argo CD's: %v", len(secrets), err)
	}
	var plugin corev1.Secret
	p.secret = &corev1.Secret{}
	if err := convert(secrets[0], &plugin); err != nil {
		return nil, err
	}
	if err := convert(secrets[1], p.secret); err != nil {
		return nil, err
	}
	for _, token := range plugin.Data {
		p.pluginToken = token
	}
	if len(p.pluginToken) == 0 {
		return nil, fmt.Errorf("deploy/token.sh print: the plugin's Secret %s holds no token", plugin.Name)
	}
	return p, nil
}

// https says whether Argo CD reaches the plugin over HTTPS.
func (p *project) https() bool {
	for _, url := range p.baseURLs() {
		if strings.HasPrefix(url, "https://") {
			return true
		}
	}
	return false
}

func (p *project) baseURLs() []string {
	var urls []string
	for _, configMap := range p.configMaps {
		urls = append(urls, configMap.Data["baseUrl"])
	}
	sort.Strings(urls)
	return urls
}

func output(dir, program string, args ...string) ([]byte, error) {
	return outputWith(nil, dir, program, args...)
}

// outputWith is output with env as the program's environment (nil: this
// process's).
func outputWith(env []string, dir, program string, args ...string) ([]byte, error) {
	command := exec.Command(program, args...)
	command.Dir = dir
	command.Env = env
	var stderr bytes.Buffer
	command.Stderr = &stderr
	out, err := command.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", program, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// convert decodes a parsed object into a Kubernetes type, as the API would
// (base64 for Secret data).
func convert(object map[string]any, into any) error {
	data, err := json.Marshal(object)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}
