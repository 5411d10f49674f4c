// Package metrics serves xdpscan's counters in the Prometheus exposition
// format (github.com/prometheus/client_golang). Nothing is counted for it
// on the packet path: each scrape reads the XDP programs' per-CPU maps,
// the scan's progress counters and the interface's netlink stats64 once
// (custom Collectors), so a scrape costs a few map lookups and syscalls,
// whatever the packet rate.
//
// The server binds where asked (Listen, before setup: a taken port is a
// usage error before anything is attached) and answers only once Serve is
// called, which the commands do after privileges are dropped: until then
// connections wait in the listen backlog.
package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is every metric's prefix.
const Namespace = "xdpscan"

// Server is the /metrics endpoint of one command.
type Server struct {
	Registry *prometheus.Registry
	ln       net.Listener
	srv      *http.Server
	once     sync.Once
	done     chan struct{}
}

// Listen binds addr (HOST:PORT) now; nothing is answered before Serve.
func Listen(addr string) (*Server, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--metrics-addr %q: want HOST:PORT (127.0.0.1:9477, [::1]:9477, :9477 for every address): %v", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w (is another exporter on that port?)", addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newBuildInfo())
	s := &Server{Registry: reg, ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "xdpscan exporter: metrics at /metrics")
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Addr is the address bound (the port chosen, for :0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve starts answering, in the background. Call it after the
// privileges are dropped.
func (s *Server) Serve() {
	s.once.Do(func() {
		go func() {
			defer close(s.done)
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "xdpscan: metrics server: %v\n", err)
			}
		}()
	})
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.once.Do(func() { close(s.done); s.ln.Close() })
	<-s.done
	return err
}

// Version is the module's version, "devel" for a build from a work tree.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// KernelRelease is uname -r.
func KernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func newBuildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which xdpscan, Go and kernel are running.",
		ConstLabels: prometheus.Labels{"version": Version(), "goversion": runtime.Version(), "kernel": KernelRelease()}})
	g.Set(1)
	return g
}
