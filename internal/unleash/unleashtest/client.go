package unleashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Response is one answer of the server, read whole.
type Response struct {
	Method string      // of the request
	Path   string      // of the request, query included
	Status int         // the HTTP status code
	Header http.Header // the response's headers
	Body   []byte      // the whole body, as received
}

// String is "METHOD path -> status: body", the body cut at 2000 bytes.
func (r *Response) String() string {
	body := string(r.Body)
	if len(body) > 2000 {
		body = body[:2000] + "…"
	}
	return fmt.Sprintf("%s %s -> %d: %s", r.Method, r.Path, r.Status, strings.TrimSpace(body))
}

// Want fails the test unless the status is one of statuses. It returns r for chaining.
func (r *Response) Want(t testing.TB, statuses ...int) *Response {
	t.Helper()
	if !slices.Contains(statuses, r.Status) {
		t.Fatalf("want status %v, got %s", statuses, r)
	}
	return r
}

// Decode unmarshals the body into v, failing the test if it is not that JSON.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s %s: %v\nbody: %s", r.Method, r.Path, err, r.Body)
	}
}

// Object decodes the body as a JSON object.
func (r *Response) Object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.Decode(t, &m)
	return m
}

// Do sends one request to the server with token as the Authorization header ("" sends none)
// and reads the whole answer. body is nil (no body), a []byte or string sent as it is, or a
// value sent as JSON. A status of 4xx or 5xx is not an error; only transport failures are.
func (s *Server) Do(ctx context.Context, token, method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &Response{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Call sends one admin API request with the admin token and fails the test only if the
// request could not be made. Check the status with Want.
func (s *Server) Call(t testing.TB, method, path string, body any) *Response {
	t.Helper()
	return s.CallAs(t, s.AdminToken, method, path, body)
}

// CallAs is Call with another Authorization header value; "" sends none.
func (s *Server) CallAs(t testing.TB, token, method, path string, body any) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.Do(ctx, token, method, path, body)
	if err != nil {
		t.Fatalf("unleash admin API: %v", err)
	}
	return resp
}
