package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
)

// The NO_PROXY that Argo CD's proxy documentation sets for in-cluster names.
const noProxy = ".svc,.cluster.local"

// proxyCommand checks each URL as Argo CD's plugin client would send it:
// Go's default transport asks http.ProxyFromEnvironment, which reads the
// environment once per process, so it is set before the first call.
func proxyCommand(urls []string) error {
	if len(urls) == 0 {
		return fmt.Errorf("no URL\n%s", usage)
	}
	for key, value := range map[string]string{
		"HTTP_PROXY":  "http://proxy.invalid:3128",
		"HTTPS_PROXY": "http://proxy.invalid:3128",
		"NO_PROXY":    noProxy,
	} {
		for _, name := range []string{key, strings.ToLower(key)} {
			// Set for Go's check alone: the plugin started later inherits
			// this process's environment.
			old, had := os.LookupEnv(name)
			defer func() {
				if had {
					_ = os.Setenv(name, old)
				} else {
					_ = os.Unsetenv(name)
				}
			}()
			if err := os.Setenv(name, value); err != nil {
				return err
			}
		}
	}
	var proxied []string
	for _, url := range urls {
		request, err := http.NewRequest(http.MethodPost, url, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		proxy, err := http.ProxyFromEnvironment(request)
		if err != nil {
			return fmt.Errorf("%s: %w", url, err)
		}
		if proxy != nil {
			proxied = append(proxied, fmt.Sprintf("%s goes to the proxy %s", url, proxy))
		} else {
			fmt.Printf("%s: direct with NO_PROXY=%s\n", url, noProxy)
		}
	}
	if len(proxied) > 0 {
		return fmt.Errorf("with HTTP_PROXY set and NO_PROXY=%s, %s", noProxy, strings.Join(proxied, "; "))
	}
	return nil
}
