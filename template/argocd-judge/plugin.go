package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	pluginclient "github.com/argoproj/argo-cd/v3/applicationset/services/plugin"
)

// plugin is the project's release binary, running on loopback.
type plugin struct {
	binary string
	url    string // http:// or, with tls, https://
	// With tls: the files it serves, issued by the trusted CA.
	certFile, keyFile string
	token             string
	command           *exec.Cmd
	log               *tail
	done              chan struct{} // closed once the process has exited
	exit              error         // its exit, once done is closed
}

// tail keeps the last 16 KiB the plugin logged.
type tail struct {
	mu   sync.Mutex
	data []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = append(t.data, p...)
	if over := len(t.data) - 16<<10; over > 0 {
		t.data = t.data[over:]
	}
	return len(p), nil
}

func freePort() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer listener.Close()
	return listener.Addr().String(), nil
}

// startPlugin runs the binary as the project's Deployment would, on
// loopback, with the token deploy/token.sh makes and the author's settings.
func startPlugin(binary string, project *project) (*plugin, error) {
	token := project.pluginToken
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(os.TempDir(), fmt.Sprintf("argocd-judge-%d-%s.token", os.Getpid(), strings.ReplaceAll(addr, ":", "-")))
	if err := os.WriteFile(tokenFile, token, 0o600); err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &plugin{
		binary: binary,
		url:    "http://" + addr,
		token:  strings.TrimSpace(string(token)),
		log:    &tail{},
		done:   make(chan struct{}),
	}
	p.command = exec.Command(binary)
	p.command.Dir = project.dir
	// The judge's own settings last: of duplicates, the last one counts.
	p.command.Env = append(append(os.Environ(), project.pluginEnv...),
		"PLUGIN_TOKEN_FILE="+tokenFile,
		"PLUGIN_LISTEN_ADDR="+addr,
		"PLUGIN_METRICS_ADDR="+metrics,
		"RUST_LOG=warn")
	if project.tls != nil {
		pair, err := project.tls.trusted.issue()
		if err != nil {
			return nil, err
		}
		prefix := strings.TrimSuffix(tokenFile, ".token")
		p.certFile, p.keyFile = prefix+".crt", prefix+".key"
		if err := errors.Join(os.WriteFile(p.certFile, pair.cert, 0o600), os.WriteFile(p.keyFile, pair.key, 0o600)); err != nil {
			return nil, err
		}
		p.url = "https://" + addr
		p.command.Env = append(p.command.Env, "PLUGIN_TLS_CERT_FILE="+p.certFile, "PLUGIN_TLS_KEY_FILE="+p.keyFile)
	}
	p.command.Stderr = p.log
	// The plugin dies with the judge, however the judge ends.
	p.command.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.command.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.exit = p.command.Wait()
		_ = os.Remove(tokenFile)
		if p.certFile != "" {
			_ = os.Remove(p.certFile)
			_ = os.Remove(p.keyFile)
		}
		close(p.done)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start-up (%v)%s", binary, p.exit, p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s never listened on %s%s", binary, addr, p.logTail())
		}
	}
}

// kill ends the plugin, if it still runs, and waits for it.
func (p *plugin) kill() {
	_ = p.command.Process.Kill()
	<-p.done
}

func (p *plugin) logTail() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	if len(p.log.data) == 0 {
		return ""
	}
	return "\nthe plugin logged:\n" + string(p.log.data)
}

// preview runs the binary's preview command with the plugin's settings.
func (p *plugin) preview(args ...string) ([]byte, error) {
	return outputWith(p.command.Env, p.command.Dir, p.binary, append([]string{"preview"}, args...)...)
}

// exampleRequest asks the binary for its example request.
func (p *plugin) exampleRequest() (*pluginclient.ServiceRequest, error) {
	out, err := p.preview("--request")
	if err != nil {
		return nil, err
	}
	var request pluginclient.ServiceRequest
	if err := json.Unmarshal(out, &request); err != nil {
		return nil, fmt.Errorf("%s preview --request: %w", p.binary, err)
	}
	return &request, nil
}

// exampleAsPreviewed sends the example request with Argo CD's plugin client
// and expects, decoded as Argo CD decodes it, what `preview` printed.
func (p *plugin) exampleAsPreviewed() (*pluginclient.ServiceRequest, error) {
	request, err := p.exampleRequest()
	if err != nil {
		return nil, err
	}
	client, err := pluginclient.NewPluginService(request.ApplicationSetName, p.url, p.token, 30)
	if err != nil {
		return nil, err
	}
	got, err := client.List(context.Background(), request.Input.Parameters)
	if err != nil {
		return nil, fmt.Errorf("the example request: %w", err)
	}
	out, err := p.preview()
	if err != nil {
		return nil, err
	}
	var previewed pluginclient.ServiceResponse
	if err := json.Unmarshal(out, &previewed); err != nil {
		return nil, fmt.Errorf("%s preview printed no reply: %w", p.binary, err)
	}
	if !reflect.DeepEqual(got.Output.Parameters, previewed.Output.Parameters) {
		return nil, fmt.Errorf("the example request gave Argo CD %v, but preview printed %v", got.Output.Parameters, previewed.Output.Parameters)
	}
	fmt.Printf("example request: Argo CD's client got the %d parameter sets preview printed\n", len(got.Output.Parameters))
	return request, nil
}

// hostPort is a URL's host and port.
func hostPort(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://")
}

// scheme is a URL's scheme with its "://".
func scheme(url string) string {
	return strings.TrimSuffix(url, hostPort(url))
}

// service forwards each connection to the backend chosen when it was
// opened, as kube-proxy does: once a pod leaves the endpoints, new
// connections go elsewhere while established ones stay with it.
type service struct {
	listener net.Listener
	mu       sync.Mutex
	backend  string
	tap      *tap // keeps what the backend answers, when not nil
}

func newService(backend string, tap *tap) (*service, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &service{listener: listener, backend: backend, tap: tap}
	go func() {
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			backend := s.backend
			s.mu.Unlock()
			go forward(client, backend, s.tap)
		}
	}()
	return s, nil
}

func (s *service) route(backend string) {
	s.mu.Lock()
	s.backend = backend
	s.mu.Unlock()
}

func forward(client net.Conn, backend string, tap *tap) {
	defer client.Close()
	server, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	pipe := func(to, from net.Conn, copies io.Writer) {
		if copies != nil {
			_, _ = io.Copy(io.MultiWriter(to, copies), from)
		} else {
			_, _ = io.Copy(to, from)
		}
		if tcp, ok := to.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client, nil)
	go pipe(client, server, tap.stream())
	<-done
	<-done
}

// rollingRestart is a rolling restart as the ApplicationSet controller lives
// it: Argo CD's plugin client, from 16 goroutines, posts through a Service to
// an old pod on kept-alive connections (Go's transport never retries a POST
// on a connection the server closed). The old pod leaves the endpoints (new
// connections go to a new pod), then gets SIGTERM. No request may fail.
func rollingRestart(binary string, project *project) error {
	old, err := startPlugin(binary, project)
	if err != nil {
		return err
	}
	defer old.kill()
	replacement, err := startPlugin(binary, project)
	if err != nil {
		return err
	}
	defer replacement.kill()
	svc, err := newService(hostPort(old.url), nil)
	if err != nil {
		return err
	}
	defer svc.listener.Close()
	example, err := old.exampleRequest()
	if err != nil {
		return err
	}
	serviceURL := scheme(old.url) + svc.listener.Addr().String()
	var (
		mu               sync.Mutex
		answered, failed int
		failures         []string
		done             = make(chan struct{})
		workers          sync.WaitGroup
	)
	for worker := range 16 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			// Reconciles come at uneven times: connections sit idle in Go's
			// pool between them, where a closing server catches them.
			pause := time.Duration(worker%4) * time.Millisecond
			for {
				time.Sleep(pause)
				select {
				case <-done:
					return
				default:
				}
				// A client per request, as Argo CD makes one per generation
				// (it is not safe for concurrent use); all share Go's
				// default transport and its kept-alive connections.
				client, err := pluginclient.NewPluginService("rolling-restart", serviceURL, old.token, 30)
				if err == nil {
					_, err = client.List(context.Background(), example.Input.Parameters)
				}
				mu.Lock()
				if err == nil || strings.Contains(err.Error(), "API error with status code") {
					answered++
				} else {
					failed++
					if len(failures) < 5 {
						failures = append(failures, err.Error())
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	// preStop: the pod leaves the endpoints, then SIGTERM comes.
	svc.route(hostPort(replacement.url))
	time.Sleep(500 * time.Millisecond)
	if err := old.command.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-old.done:
	case <-time.After(45 * time.Second):
		return fmt.Errorf("rolling restart: the old pod did not stop within 45 s of SIGTERM%s", old.logTail())
	}
	time.Sleep(200 * time.Millisecond)
	close(done)
	workers.Wait()
	if failed > 0 {
		return fmt.Errorf("rolling restart: %d of %d requests of Argo CD's client failed while the old pod stopped (%s)%s",
			failed, answered+failed, strings.Join(failures, "; "), old.logTail())
	}
	if old.exit != nil {
		return fmt.Errorf("rolling restart: the old pod ended with %v%s", old.exit, old.logTail())
	}
	fmt.Printf("rolling restart: 16 of Argo CD's clients, %d requests, none failed while the old pod drained and stopped\n", answered)
	return nil
}
