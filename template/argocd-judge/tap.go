package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"sync"

	pluginclient "github.com/argoproj/argo-cd/v3/applicationset/services/plugin"
)

// tap keeps the bytes the plugin sends back through a service (the first
// MiB of each connection), so that a failing example can name the keys the
// generator did return. Argo CD's client still talks to the plugin byte for
// byte: nothing is parsed on the way.
type tap struct {
	mu      sync.Mutex
	streams []*capped
}

// capped is a buffer that keeps its first limit bytes and accepts the rest.
type capped struct {
	mu    sync.Mutex
	data  []byte
	limit int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.limit - len(c.data); room > 0 {
		c.data = append(c.data, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// stream is where one connection's replies are kept (nil without a tap).
func (t *tap) stream() io.Writer {
	if t == nil {
		return nil
	}
	stream := &capped{limit: 1 << 20}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams = append(t.streams, stream)
	return stream
}

// forget drops what was kept so far.
func (t *tap) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, stream := range t.streams {
		stream.mu.Lock()
		stream.data = nil
		stream.mu.Unlock()
	}
}

// keys are the keys of every parameter set the plugin answered since the
// last forget, sorted.
func (t *tap) keys() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	found := map[string]bool{}
	for _, stream := range t.streams {
		stream.mu.Lock()
		replies := bufio.NewReader(bytes.NewReader(stream.data))
		stream.mu.Unlock()
		for {
			response, err := http.ReadResponse(replies, nil)
			if err != nil {
				break
			}
			var body io.Reader = response.Body
			if response.Header.Get("Content-Encoding") == "gzip" {
				if body, err = gzip.NewReader(response.Body); err != nil {
					break
				}
			}
			var reply pluginclient.ServiceResponse
			err = json.NewDecoder(body).Decode(&reply)
			_, _ = io.Copy(io.Discard, response.Body)
			response.Body.Close()
			if err != nil {
				continue
			}
			for _, set := range reply.Output.Parameters {
				for key := range set {
					found[key] = true
				}
			}
		}
	}
	keys := make([]string, 0, len(found))
	for key := range found {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
