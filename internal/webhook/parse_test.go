package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
)

// TestChangedFilesUnknown: the file list is only reported when the payload's commits
// are known to describe the whole push.
func TestChangedFilesUnknown(t *testing.T) {
	commit := map[string]any{"added": []string{"a.yaml"}, "removed": []string{}, "modified": []string{"b.yaml"}}
	bare := map[string]any{"id": shaAfter} // Gogs-era commit without file lists
	empty := map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{}}
	many := make([]any, githubMaxCommits)
	for i := range many {
		many[i] = commit
	}
	tests := []struct {
		name   string
		change map[string]any
		want   []string
	}{
		{"listed", map[string]any{}, []string{"a.yaml", "b.yaml"}},
		{"repeated files once", map[string]any{"commits": []any{commit, commit}}, []string{"a.yaml", "b.yaml"}},
		{"empty commit: known, nothing changed", map[string]any{"commits": []any{empty}}, []string{}},
		{"forced push", map[string]any{"forced": true}, nil},
		{"branch created", map[string]any{"before": shaZero}, nil},
		{"no commits listed", map[string]any{"commits": []any{}}, nil},
		{"gitlab capped list", map[string]any{"total_commits_count": 21}, nil},
		{"gitea capped list", map[string]any{"total_commits": 6}, nil},
		{"github list at its cap", map[string]any{"commits": many}, nil},
		{"commits without file lists", map[string]any{"commits": []any{commit, bare}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"ref": "refs/heads/main", "before": shaBefore, "after": shaAfter, "commits": []any{commit}}
			for k, v := range tc.change {
				m[k] = v
			}
			body, _ := json.Marshal(m)
			p, err := parse(ProviderGitHub, body)
			if err != nil {
				t.Fatal(err)
			}
			got, reason := p.find("main")
			if reason != "" {
				t.Fatalf("ignored: %s", reason)
			}
			if !reflect.DeepEqual(got.files, tc.want) || (got.files == nil) != (tc.want == nil) {
				t.Errorf("files %#v, want %#v", got.files, tc.want)
			}
		})
	}
}

func TestFindAmongSeveralChanges(t *testing.T) {
	change := func(name, typ, hash string) map[string]any {
		return map[string]any{
			"new": map[string]any{"type": typ, "name": name, "target": map[string]any{"hash": hash}},
			"old": map[string]any{"type": typ, "name": name, "target": map[string]any{"hash": shaBefore}},
		}
	}
	body, _ := json.Marshal(map[string]any{"push": map[string]any{"changes": []any{
		change("v2.0.0", "tag", shaAfter),
		change("release", "branch", shaBefore),
		change("main", "branch", shaAfter),
	}}})
	p, err := parse(ProviderBitbucketCloud, body)
	if err != nil {
		t.Fatal(err)
	}
	got, reason := p.find("main")
	if reason != "" || got.after != shaAfter || got.before != shaBefore {
		t.Errorf("find main: %+v %q", got, reason)
	}
	if _, reason := p.find("develop"); reason != ReasonOtherBranch {
		t.Errorf("find develop: reason %q, want %q", reason, ReasonOtherBranch)
	}
}

func TestParseGenericRefs(t *testing.T) {
	for ref, want := range map[string]string{
		"main":              "",
		"refs/heads/main":   "",
		"refs/heads/mainly": ReasonOtherBranch,
		"refs/tags/main":    ReasonTag,
		"refs/pull/1/head":  ReasonOtherRef,
	} {
		body := fmt.Appendf(nil, `{"ref": %q, "after": %q}`, ref, shaAfter)
		p, err := parse(ProviderGeneric, body)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if _, reason := p.find("main"); reason != want {
			t.Errorf("ref %q: reason %q, want %q", ref, reason, want)
		}
	}
}

func TestDeliveriesLRU(t *testing.T) {
	d := newDeliveries(2)
	steps := []struct {
		provider, id string
		wantNew      bool
	}{
		{"github", "a", true},
		{"github", "b", true},
		{"github", "a", false}, // a is now the most recent
		{"github", "c", true},  // evicts b
		{"github", "a", false},
		{"github", "b", true},
		{"gitlab", "a", true}, // ids are per provider
		{"github", "", true},  // no id: never a duplicate
		{"github", "", true},
	}
	for i, s := range steps {
		if got := d.add(s.provider, s.id); got != s.wantNew {
			t.Errorf("step %d add(%s, %q) = %t, want %t", i, s.provider, s.id, got, s.wantNew)
		}
	}
	if d.order.Len() != 2 || len(d.index) != 2 {
		t.Errorf("holds %d/%d ids, want 2", d.order.Len(), len(d.index))
	}
}

func TestDetectProvider(t *testing.T) {
	tests := []struct {
		path    string
		headers http.Header
		want    string
	}{
		{"/webhook", http.Header{"X-Github-Event": {"push"}}, ProviderGitHub},
		{"/webhook", http.Header{"X-Github-Event": {"push"}, "X-Gitea-Event": {"push"}}, ProviderGitea},
		{"/webhook", http.Header{"X-Gitea-Event": {"push"}, "X-Forgejo-Event": {"push"}}, ProviderForgejo},
		{"/webhook", http.Header{"X-Gogs-Event": {"push"}}, ProviderGogs},
		{"/webhook", http.Header{"X-Gitlab-Event": {"Push Hook"}}, ProviderGitLab},
		{"/webhook", http.Header{"X-Event-Key": {"repo:push"}}, ProviderBitbucketCloud},
		{"/webhook", http.Header{"X-Event-Key": {"repo:refs_changed"}}, ProviderBitbucketServer},
		{"/webhook", http.Header{"X-Event-Key": {"repo:refs_changed"}, "X-Request-Uuid": {"u"}}, ProviderBitbucketCloud},
		{"/webhook", http.Header{"X-Event-Key": {"repo:push"}, "X-Request-Id": {"u"}}, ProviderBitbucketServer},
		{"/webhook", http.Header{"X-Flagsync-Signature": {"sha256=00"}}, ProviderGeneric},
		{"/webhook", http.Header{"X-Hub-Signature-256": {"sha256=00"}}, ProviderUnknown},
		{"/webhook/", http.Header{}, ProviderUnknown},
		{"/webhook/github", http.Header{"X-Gitlab-Event": {"Push Hook"}}, ProviderGitHub},
		{"/webhook/gitea", http.Header{"X-Forgejo-Event": {"push"}}, ProviderForgejo},
		{"/webhook/forgejo", http.Header{}, ProviderForgejo},
		{"/webhook/bitbucket", http.Header{"X-Event-Key": {"repo:push"}}, ProviderBitbucketCloud},
		{"/webhook/bitbucket-server", http.Header{"X-Event-Key": {"repo:push"}}, ProviderBitbucketServer},
		{"/webhook/generic", http.Header{"X-Github-Event": {"push"}}, ProviderGeneric},
		{"/webhook/other", http.Header{"X-Github-Event": {"push"}}, ProviderGitHub},
	}
	for _, tc := range tests {
		if got := detectProvider(tc.path, tc.headers); got != tc.want {
			t.Errorf("detectProvider(%s, %v) = %q, want %q", tc.path, tc.headers, got, tc.want)
		}
	}
}
