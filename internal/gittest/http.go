package gittest

import (
	"crypto/subtle"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// HTTPServer is git's own smart-HTTP server (git http-backend run as CGI) on 127.0.0.1,
// behind HTTP basic auth.
type HTTPServer struct {
	// URL is the clone URL of the served repository, without credentials.
	URL string

	requests atomic.Int64
	uploads  atomic.Int64
}

// Requests returns how many requests the server has answered, authorised or not.
func (s *HTTPServer) Requests() int64 { return s.requests.Load() }

// UploadPacks returns how many pack downloads (POST git-upload-pack) were served: the
// requests that transfer objects, as opposed to reference listings.
func (s *HTTPServer) UploadPacks() int64 { return s.uploads.Load() }

// StartHTTP serves repo over git's smart-HTTP protocol and returns its clone URL
// (http://127.0.0.1:PORT/remote.git). Every request must carry basic auth with user and
// pass, else it gets 401 with a WWW-Authenticate challenge. The server stops when the
// test ends.
func StartHTTP(tb testing.TB, repo *Repo, user, pass string) string {
	tb.Helper()
	return StartHTTPServer(tb, repo, user, pass).URL
}

// StartHTTPServer is StartHTTP returning the server, for tests that count requests.
func StartHTTPServer(tb testing.TB, repo *Repo, user, pass string) *HTTPServer {
	tb.Helper()
	s, _ := startHTTP(tb, repo, user, pass, false)
	return s
}

// StartHTTPS is StartHTTPServer over TLS, with a certificate for 127.0.0.1 signed by a
// throwaway authority. It returns the server (URL https://127.0.0.1:PORT/remote.git)
// and the authority's certificate in PEM, which clients must be told to trust.
func StartHTTPS(tb testing.TB, repo *Repo, user, pass string) (*HTTPServer, []byte) {
	tb.Helper()
	return startHTTP(tb, repo, user, pass, true)
}

func startHTTP(tb testing.TB, repo *Repo, user, pass string, tls bool) (*HTTPServer, []byte) {
	tb.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		tb.Fatalf("the git binary is needed for this test: %v", err)
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Root: "/",
		Dir:  filepath.Dir(repo.Bare),
		Env: append(repo.Env(),
			"GIT_PROJECT_ROOT="+filepath.Dir(repo.Bare),
			"GIT_HTTP_EXPORT_ALL=1",
		),
	}
	s := &HTTPServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && filepath.Base(r.URL.Path) == "git-upload-pack" {
			s.uploads.Add(1)
		}
		backend.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener = listenLoopback(tb)
	var caPEM []byte
	if tls {
		srv.StartTLS()
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	} else {
		srv.Start()
	}
	tb.Cleanup(srv.Close)
	s.URL = srv.URL + "/" + repo.Name
	return s, caPEM
}

// listenLoopback listens on a free port of 127.0.0.1.
func listenLoopback(tb testing.TB) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on 127.0.0.1: %v", err)
	}
	return l
}

// StartBlackhole listens on 127.0.0.1, accepts connections and never answers on them,
// like a server that hangs. It returns the listener's host:port. Connections are closed
// when the test ends.
func StartBlackhole(tb testing.TB) string {
	tb.Helper()
	l := listenLoopback(tb)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// ClosedPort returns a 127.0.0.1 host:port on which nothing listens: connecting to it is
// refused at once.
func ClosedPort(tb testing.TB) string {
	tb.Helper()
	l := listenLoopback(tb)
	addr := l.Addr().String()
	l.Close()
	return addr
}
