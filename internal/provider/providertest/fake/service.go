package fake

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/flagsync/flagsync/internal/api"
)

// Server is the fake flag service's API: flags in memory.
type Server struct {
	mu     sync.Mutex
	flags  map[string]*Flag
	writes int
}

// NewServer returns an empty service.
func NewServer() *Server { return &Server{flags: map[string]*Flag{}} }

// Writes returns how many writes the service accepted.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Lock marks a flag as locked by someone else: the planner refuses to change it.
func (s *Server) Lock(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flags[key]; ok {
		f.Locked = true
	}
}

// Flags returns every flag, archived ones included, by key.
func (s *Server) Flags() []Flag {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Flag, 0, len(s.flags))
	for _, f := range s.flags {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Server) get(key string) (Flag, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flags[key]
	if !ok {
		return Flag{}, false
	}
	return *f, true
}

// write applies one request: POST /flags creates, PATCH /flags/{key} updates,
// POST /flags/{key}/archive archives. It answers the flag as written.
func (s *Server) write(req api.Request) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(status int, msg string) error {
		return api.NewError(req.Method, req.Path, status, []byte(`{"message":"`+msg+`"}`))
	}
	var body Flag
	if len(req.Body) > 0 && json.Unmarshal(req.Body, &body) != nil {
		return nil, fail(http.StatusBadRequest, "body is not a flag")
	}
	key, archive := strings.CutSuffix(strings.TrimPrefix(req.Path, "/flags/"), "/archive")
	switch {
	case req.Method == http.MethodPost && req.Path == "/flags":
		if _, ok := s.flags[body.Key]; ok {
			return nil, fail(http.StatusConflict, "flag exists")
		}
		key = body.Key
		body.Managed, body.Archived, body.Locked = true, false, false
		s.flags[key] = &body
	case s.flags[key] == nil:
		return nil, fail(http.StatusNotFound, "no such flag")
	case req.Method == http.MethodPost && archive:
		s.flags[key].Archived = true
	case req.Method == http.MethodPatch && !archive:
		s.flags[key].Enabled, s.flags[key].Value = body.Enabled, body.Value
	default:
		return nil, fail(http.StatusMethodNotAllowed, "unknown request")
	}
	s.writes++
	return json.Marshal(s.flags[key])
}

// ServeHTTP serves the service: GET /flags lists the flags; writes as Client.Do sends
// them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/flags" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Flags())
		return
	}
	var body json.RawMessage
	_ = json.NewDecoder(r.Body).Decode(&body)
	out, err := s.write(api.Request{Method: r.Method, Path: r.URL.Path, Body: body})
	if e, ok := err.(*api.Error); ok {
		http.Error(w, e.Error(), e.Status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// Client reaches a Service the way a vendor's client reaches its API: every call spends
// the budget first and is seen by the observer.
type Client struct {
	svc     *Server
	budget  *api.Budget
	observe func(api.CallInfo)
}

// NewClient returns a client of svc; observe may be nil.
func NewClient(svc *Server, budget *api.Budget, observe func(api.CallInfo)) *Client {
	return &Client{svc: svc, budget: budget, observe: observe}
}

// Budget is the client's rate budget.
func (c *Client) Budget() *api.Budget { return c.budget }

// call spends one call of the budget on fn.
func (c *Client) call(ctx context.Context, method, endpoint string, fn func() error) error {
	release, err := c.budget.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = fn()
	status := http.StatusOK
	if e, ok := err.(*api.Error); ok {
		status = e.Status
	}
	if c.observe != nil {
		c.observe(api.CallInfo{Endpoint: endpoint, Method: method, Status: status, Attempt: 1})
	}
	return err
}

// List lists every live flag that is not archived: one call.
func (c *Client) List(ctx context.Context) ([]Flag, error) {
	var out []Flag
	err := c.call(ctx, http.MethodGet, "/flags", func() error {
		for _, f := range c.svc.Flags() {
			if !f.Archived {
				out = append(out, f)
			}
		}
		return nil
	})
	return out, err
}

// Get reads one flag; a missing or archived one is a 404 *api.Error.
func (c *Client) Get(ctx context.Context, key string) (Flag, error) {
	var f Flag
	err := c.call(ctx, http.MethodGet, "/flags/{key}", func() error {
		var ok bool
		if f, ok = c.svc.get(key); !ok || f.Archived {
			return api.NewError(http.MethodGet, "/flags/"+key, http.StatusNotFound, nil)
		}
		return nil
	})
	return f, err
}

// Do sends one planned request.
func (c *Client) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, req.Method, endpointOf(req.Path), func() error {
		var err error
		out, err = c.svc.write(req)
		return err
	})
	return out, err
}

func endpointOf(p string) string {
	switch {
	case p == "/flags":
		return p
	case strings.HasSuffix(p, "/archive"):
		return "/flags/{key}/archive"
	}
	return "/flags/{key}"
}
