package codehost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestNextLink(t *testing.T) {
	h := http.Header{}
	h.Add("Link", `<https://api.github.com/repositories/1/issues/7/comments?page=1>; rel="prev", <https://api.github.com/repositories/1/issues/7/comments?page=3>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?page=9>; rel="last"`)
	if got := nextLink(h); got != "https://api.github.com/repositories/1/issues/7/comments?page=3" {
		t.Fatalf("next %q", got)
	}
	h.Set("Link", `<https://x/?page=9>; rel="last"`)
	if got := nextLink(h); got != "" {
		t.Fatalf("next %q on the last page", got)
	}
}

// TestNextPageOnAnotherHostGetsNoToken: a Link header pointing elsewhere is not followed.
func TestNextPageOnAnotherHostGetsNoToken(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.Write([]byte("[]"))
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<"+other.URL+"/next?page=2>; rel=\"next\"")
		w.Write([]byte(`[{"id":1,"body":"x","user":{"id":2,"login":"a","type":"User"}}]`))
	}))
	defer api.Close()
	gh, err := NewGitHub(nil, api.URL, "canary-token")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = gh.IssueComments(context.Background(), "acme/flags", 7, func(Comment) bool { n++; return true })
	if err == nil || !strings.Contains(err.Error(), "refusing to send the token") || leaked.Load() || n != 1 {
		t.Fatalf("err %v, leaked %v, %d comments: want the first page read and the foreign next page refused", err, leaked.Load(), n)
	}
}

func TestIdentityIs(t *testing.T) {
	for _, c := range []struct {
		me, author Identity
		want       bool
	}{
		{Identity{ID: 1, Login: "a"}, Identity{ID: 1, Login: "renamed"}, true},
		{Identity{ID: 1, Login: "a"}, Identity{ID: 2, Login: "a"}, false},
		{Identity{Login: "github-actions[bot]"}, Identity{ID: 41898282, Login: "GitHub-Actions[bot]"}, true},
		{Identity{Login: "github-actions[bot]"}, Identity{ID: 5, Login: "github-actions"}, false},
		{Identity{}, Identity{}, false},
	} {
		if got := c.me.Is(c.author); got != c.want {
			t.Errorf("%+v.Is(%+v) = %v, want %v", c.me, c.author, got, c.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("ééééé", 3); got != "éé…" {
		t.Fatalf("%q", got)
	}
	if got := Truncate("abc", 3); got != "abc" {
		t.Fatalf("%q", got)
	}
}
