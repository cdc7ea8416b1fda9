package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// buildRelease builds the project's release binary as the Dockerfile does
// (cargo build --release --locked) and returns its path, wherever cargo's
// target folder is.
func buildRelease(dir string) (string, error) {
	manifest, err := filepath.Abs(filepath.Join(dir, "Cargo.toml"))
	if err == nil {
		manifest, err = filepath.EvalSymlinks(manifest)
	}
	if err != nil {
		return "", err
	}
	done := step("building the plugin for release: cargo build --release --locked")
	command := exec.Command("cargo", "build", "--release", "--locked", "--message-format=json-render-diagnostics")
	command.Dir = dir
	command.Stderr = os.Stderr
	var stdout bytes.Buffer
	command.Stdout = &stdout
	if err := command.Run(); err != nil {
		return "", fmt.Errorf("cargo build --release --locked: %w", err)
	}
	done()
	binary := ""
	lines := bufio.NewScanner(&stdout)
	lines.Buffer(nil, 16<<20)
	for lines.Scan() {
		var message struct {
			Reason       string `json:"reason"`
			ManifestPath string `json:"manifest_path"`
			Executable   string `json:"executable"`
		}
		if json.Unmarshal(lines.Bytes(), &message) == nil && message.Reason == "compiler-artifact" &&
			message.ManifestPath == manifest && message.Executable != "" {
			binary = message.Executable
		}
	}
	if binary == "" {
		return "", fmt.Errorf("cargo build --release built no binary of %s", manifest)
	}
	return binary, nil
}
