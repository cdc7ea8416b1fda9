package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
)

// What the author gives the judge's runs of the plugin (both optional): a
// generator that needs settings, or an API it calls, gets them here.
const (
	// settingsFile holds NAME=value lines the plugin is started with;
	// $FIXTURES_URL in a value is the address of fixturesDir, served.
	settingsFile = "deploy/examples/judge.env"
	// fixturesDir is served over HTTP on loopback, a request's path naming
	// a file (its query string ignored): a stand-in for an upstream API.
	fixturesDir = "deploy/examples/fixtures"
)

type pluginSettings struct {
	env      []string
	fixtures *httptest.Server
}

func loadSettings(dir string) (*pluginSettings, error) {
	s := &pluginSettings{}
	if info, err := os.Stat(filepath.Join(dir, fixturesDir)); err == nil && info.IsDir() {
		s.fixtures = httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, fixturesDir))))
	}
	data, err := os.ReadFile(filepath.Join(dir, settingsFile))
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		s.close()
		return nil, err
	}
	for number, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			s.close()
			return nil, fmt.Errorf("%s:%d: not NAME=value: %q", settingsFile, number+1, line)
		}
		if strings.Contains(value, "$FIXTURES_URL") {
			if s.fixtures == nil {
				s.close()
				return nil, fmt.Errorf("%s:%d: %s names $FIXTURES_URL, but there is no %s folder", settingsFile, number+1, name, fixturesDir)
			}
			value = strings.ReplaceAll(value, "$FIXTURES_URL", s.fixtures.URL)
		}
		s.env = append(s.env, name+"="+value)
	}
	// Names only: a value may be a credential.
	var names []string
	for _, setting := range s.env {
		name, _, _ := strings.Cut(setting, "=")
		names = append(names, name)
	}
	served := ""
	if s.fixtures != nil {
		served = fmt.Sprintf("; %s served at %s", fixturesDir, s.fixtures.URL)
	}
	fmt.Printf("%s: the plugin runs with %s set%s\n", settingsFile, strings.Join(names, ", "), served)
	return s, nil
}

func (s *pluginSettings) close() {
	if s.fixtures != nil {
		s.fixtures.Close()
	}
}
