package prcomment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const marker = "<!-- flagsync-plan -->"

// fakeHost is a minimal GitHub issue-comments / GitLab MR-notes API holding comments in
// memory. It fails the test on any request it does not expect.
type fakeHost struct {
	t        *testing.T
	provider string
	token    string
	mu       sync.Mutex
	comments []comment
	nextID   int64
	calls    []string
}

func (f *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	var authOK bool
	if f.provider == "github" {
		authOK = r.Header.Get("Authorization") == "Bearer "+f.token
	} else {
		authOK = r.Header.Get("PRIVATE-TOKEN") == f.token
	}
	if !authOK {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials"}`)
		return
	}
	listPath, itemPrefix := "/repos/acme/flags/issues/7/comments", "/repos/acme/flags/issues/comments/"
	if f.provider == "gitlab" {
		listPath, itemPrefix = "/projects/acme%2Fflags/merge_requests/7/notes", "/projects/acme%2Fflags/merge_requests/7/notes/"
	}
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodGet && path == listPath:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		lo, hi := (page-1)*per, page*per
		if lo > len(f.comments) {
			lo = len(f.comments)
		}
		if hi > len(f.comments) {
			hi = len(f.comments)
		}
		json.NewEncoder(w).Encode(f.comments[lo:hi])
	case r.Method == http.MethodPost && path == listPath:
		var in comment
		json.NewDecoder(r.Body).Decode(&in)
		f.nextID++
		in.ID = f.nextID
		f.comments = append(f.comments, in)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(in)
	case (r.Method == http.MethodPatch && f.provider == "github" || r.Method == http.MethodPut && f.provider == "gitlab") && strings.HasPrefix(path, itemPrefix):
		id, _ := strconv.ParseInt(strings.TrimPrefix(path, itemPrefix), 10, 64)
		var in comment
		json.NewDecoder(r.Body).Decode(&in)
		for i := range f.comments {
			if f.comments[i].ID == id {
				f.comments[i].Body = in.Body
				json.NewEncoder(w).Encode(f.comments[i])
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestUpsertKeepsOneComment(t *testing.T) {
	for _, provider := range []string{"github", "gitlab"} {
		t.Run(provider, func(t *testing.T) {
			host := &fakeHost{t: t, provider: provider, token: "canary-token-123"}
			// A busy pull request: 150 unrelated comments, so the marker search pages.
			for i := 0; i < 150; i++ {
				host.nextID++
				host.comments = append(host.comments, comment{ID: host.nextID, Body: fmt.Sprintf("review comment %d", i)})
			}
			srv := httptest.NewServer(host)
			defer srv.Close()
			target := Target{Provider: provider, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: host.token}

			first, err := Upsert(context.Background(), srv.Client(), target, marker, marker+"\nPlan: 1 to create")
			if err != nil {
				t.Fatal(err)
			}
			second, err := Upsert(context.Background(), srv.Client(), target, marker, "Plan: 2 to create")
			if err != nil {
				t.Fatal(err)
			}
			if first.Action != "created" || second.Action != "updated" || first.ID != second.ID {
				t.Fatalf("first %+v, second %+v: want created then updated, same id", first, second)
			}
			var plans []string
			for _, c := range host.comments {
				if strings.Contains(c.Body, marker) {
					plans = append(plans, c.Body)
				}
			}
			if len(plans) != 1 || plans[0] != marker+"\nPlan: 2 to create" {
				t.Fatalf("plan comments %q: want exactly one, updated, marker kept", plans)
			}
		})
	}
}

func TestUpsertErrorHidesToken(t *testing.T) {
	host := &fakeHost{t: t, provider: "github", token: "right"}
	srv := httptest.NewServer(host)
	defer srv.Close()
	target := Target{Provider: "github", APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "canary-wrong-token"}
	_, err := Upsert(context.Background(), srv.Client(), target, marker, "x")
	var he *Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("error %v: want *Error with 401", err)
	}
	if strings.Contains(err.Error(), "canary-wrong-token") {
		t.Fatalf("error %q leaks the token", err)
	}
}
