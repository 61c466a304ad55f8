package prcomment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/codehost/codehosttest"
)

const marker = "<!-- flagsync-plan -->"

// account is one kind of token, on one of the fakes, and who else writes on the request.
type account struct {
	name string
	// setup starts the fake holding a busy request (150 unrelated comments, one of
	// them by someone else with the marker) and returns the target, the id of that
	// foreign comment, a way to read every comment, and the fake's write log.
	setup func(t *testing.T) (Target, int64, func() map[int64]string, func() []codehosttest.Call)
}

var (
	alice     = codehosttest.GitHubAccount{ID: 501, Login: "alice"}
	renovate  = codehosttest.GitHubAccount{ID: 29139614, Login: "renovate[bot]", Installation: true, PullRequests: true}
	ciUser    = codehosttest.GitHubAccount{ID: 777, Login: "flagsync-ci"}
	adminUser = codehosttest.GitHubAccount{ID: 778, Login: "repo-admin", Admin: true}
	carol     = codehosttest.GitLabUser{ID: 61, Username: "carol", Role: codehosttest.RoleDeveloper}
)

func githubSetup(token string, acct codehosttest.GitHubAccount, installationAuthor string) func(t *testing.T) (Target, int64, func() map[int64]string, func() []codehosttest.Call) {
	return func(t *testing.T) (Target, int64, func() map[int64]string, func() []codehosttest.Call) {
		gh := codehosttest.NewGitHub("acme/flags")
		gh.AddToken(token, acct)
		var foreign int64
		for i := range 150 {
			switch i {
			case 3:
				foreign = gh.AddComment(7, alice, marker+"\nalice quoting an old plan: Plan: 9 to create")
			case 40:
				gh.AddComment(7, renovate, marker+"\nrenovate pasted it too")
			default:
				gh.AddComment(7, alice, fmt.Sprintf("review comment %d", i))
			}
		}
		srv := gh.Start(t)
		bodies := func() map[int64]string {
			m := map[int64]string{}
			for _, c := range gh.Comments(7) {
				m[c.ID] = c.Body
			}
			return m
		}
		return Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: token, InstallationAuthor: installationAuthor},
			foreign, bodies, gh.Writes
	}
}

func gitlabSetup(token string, user codehosttest.GitLabUser) func(t *testing.T) (Target, int64, func() map[int64]string, func() []codehosttest.Call) {
	return func(t *testing.T) (Target, int64, func() map[int64]string, func() []codehosttest.Call) {
		gl := codehosttest.NewGitLab(42, "acme/flags")
		gl.AddToken(token, user)
		var foreign int64
		for i := range 150 {
			switch {
			case i == 3:
				foreign = gl.AddNote(7, carol, marker+"\ncarol quoting an old plan", false)
			case i%10 == 0:
				gl.AddNote(7, carol, "added 1 commit\n"+marker, true) // a system note that happens to carry it
			default:
				gl.AddNote(7, carol, fmt.Sprintf("review note %d", i), false)
			}
		}
		srv := gl.Start(t)
		bodies := func() map[int64]string {
			m := map[int64]string{}
			for _, n := range gl.Notes(7) {
				m[n.ID] = n.Body
			}
			return m
		}
		return Target{Provider: GitLab, APIURL: srv.URL + "/api/v4", Repo: "acme/flags", Number: 7, Token: token},
			foreign, bodies, gl.Writes
	}
}

var accounts = []account{
	{"github personal token", githubSetup("ghp_canary", ciUser, "")},
	{"github admin token (could edit anyone's comment)", githubSetup("ghp_admin", adminUser, "")},
	{"github actions GITHUB_TOKEN", githubSetup("ghs_canary", codehosttest.ActionsToken(true, true, true), "github-actions[bot]")},
	{"gitlab project access token (a bot)", gitlabSetup("glpat-bot", codehosttest.GitLabUser{ID: 90, Username: "project_42_bot_1", Bot: true, Role: codehosttest.RoleDeveloper})},
	{"gitlab maintainer token (could edit anyone's note)", gitlabSetup("glpat-maint", codehosttest.GitLabUser{ID: 91, Username: "maintainer", Role: codehosttest.RoleMaintainer})},
}

// TestUpsertNeverModifiesAForeignComment: whatever the token could do, a comment with the
// marker that another account wrote is left as it is; flagsync creates its own, then
// updates that one in place, then writes nothing when the plan is the same.
func TestUpsertNeverModifiesAForeignComment(t *testing.T) {
	for _, acc := range accounts {
		t.Run(acc.name, func(t *testing.T) {
			target, foreign, bodies, writes := acc.setup(t)
			before := bodies()
			ctx := context.Background()

			first, err := Upsert(ctx, nil, target, marker, marker+"\nPlan: 1 to create", nil)
			if err != nil {
				t.Fatal(err)
			}
			if first.Action != Created || first.ID == foreign || len(first.Foreign) == 0 || first.Foreign[0] != foreign {
				t.Fatalf("first upsert %+v: want a new comment, the foreign one (%d) reported and left alone", first, foreign)
			}
			w := writes()
			if len(w) != 1 || w[0].Method != http.MethodPost {
				t.Fatalf("writes %v: want exactly one POST (the new comment)", w)
			}

			second, err := Upsert(ctx, nil, target, marker, "Plan: 2 to create", nil)
			if err != nil {
				t.Fatal(err)
			}
			if second.Action != Updated || second.ID != first.ID {
				t.Fatalf("second upsert %+v: want comment %d updated", second, first.ID)
			}
			w = writes()
			if len(w) != 2 || !strings.HasSuffix(strings.SplitN(w[1].Path, "?", 2)[0], fmt.Sprintf("/%d", first.ID)) || w[1].Status != http.StatusOK {
				t.Fatalf("writes %v: want the second to edit comment %d only", w, first.ID)
			}

			third, err := Upsert(ctx, nil, target, marker, "Plan: 2 to create", nil)
			if err != nil || third.Action != Unchanged || len(writes()) != 2 {
				t.Fatalf("third upsert %+v, %v, writes %v: want unchanged and no write", third, err, writes())
			}

			after := bodies()
			for id, b := range before {
				if after[id] != b {
					t.Errorf("comment %d was modified: %q -> %q", id, b, after[id])
				}
			}
			if after[first.ID] != marker+"\nPlan: 2 to create" {
				t.Errorf("own comment %q: want the marker and the latest plan", after[first.ID])
			}
			for _, c := range w {
				if strings.Contains(c.Body, "canary") {
					t.Errorf("a request body carries the token: %v", c)
				}
			}
		})
	}
}

// TestUpsertFindsItsCommentOnALaterPage follows GitHub's Link header (whose next URL
// names the repository by id) and GitLab's X-Next-Page to reach the third page.
func TestUpsertFindsItsCommentOnALaterPage(t *testing.T) {
	t.Run("github", func(t *testing.T) {
		gh := codehosttest.NewGitHub("acme/flags")
		gh.AddToken("ghp_x", ciUser)
		var own int64
		for i := range 260 {
			if i == 230 {
				own = gh.AddComment(7, ciUser, marker+"\nold plan")
			} else {
				gh.AddComment(7, alice, "lgtm")
			}
		}
		srv := gh.Start(t)
		res, err := Upsert(context.Background(), nil, Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "ghp_x"}, marker, "new plan", nil)
		if err != nil || res.Action != Updated || res.ID != own {
			t.Fatalf("upsert %+v, %v: want comment %d updated", res, err, own)
		}
		var pages []string
		for _, c := range gh.Calls() {
			if c.Method == http.MethodGet && strings.Contains(c.Path, "/comments") {
				pages = append(pages, c.Path)
			}
		}
		if len(pages) != 3 || !strings.HasPrefix(pages[2], "/repositories/") || !strings.Contains(pages[2], "page=3") {
			t.Fatalf("listing calls %q: want three pages, following the Link header", pages)
		}
	})
	t.Run("gitlab", func(t *testing.T) {
		gl := codehosttest.NewGitLab(42, "acme/flags")
		bot := codehosttest.GitLabUser{ID: 90, Username: "project_42_bot_1", Bot: true, Role: codehosttest.RoleDeveloper}
		gl.AddToken("glpat-x", bot)
		var own int64
		for i := range 260 {
			if i == 230 {
				own = gl.AddNote(7, bot, marker+"\nold plan", false)
			} else {
				gl.AddNote(7, carol, "lgtm", false)
			}
		}
		srv := gl.Start(t)
		res, err := Upsert(context.Background(), nil, Target{Provider: GitLab, APIURL: srv.URL + "/api/v4", Repo: "42", Number: 7, Token: "glpat-x"}, marker, "new plan", nil)
		if err != nil || res.Action != Updated || res.ID != own {
			t.Fatalf("upsert %+v, %v: want note %d updated", res, err, own)
		}
		gets := 0
		for _, c := range gl.Calls() {
			if c.Method == http.MethodGet && strings.Contains(c.Path, "/notes") {
				gets++
			}
		}
		if gets != 3 {
			t.Fatalf("%d listing calls: want 3 (X-Next-Page followed)", gets)
		}
	})
}

// TestUpsertInstallationTokenNeedsAnAuthor: an installation token outside Actions cannot
// say whose it is, so nothing is written and the error says what to set.
func TestUpsertInstallationTokenNeedsAnAuthor(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	app := codehosttest.GitHubAccount{ID: 9001, Login: "flagsync-app[bot]", Installation: true, PullRequests: true}
	gh.AddToken("ghs_app", app)
	gh.AddComment(7, alice, marker+"\nnot yours")
	srv := gh.Start(t)
	target := Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "ghs_app"}
	_, err := Upsert(context.Background(), nil, target, marker, "plan", nil)
	var ie *IdentityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "--author") || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Fatalf("error %v: want an *IdentityError that names --author and GitHub's refusal", err)
	}
	if w := gh.Writes(); len(w) != 0 {
		t.Fatalf("writes %v: want none", w)
	}

	// With --author, the app's own comment is found and updated; /user is not asked.
	own := gh.AddComment(7, app, marker+"\nold")
	target.Author = "Flagsync-App[bot]"
	res, err := Upsert(context.Background(), nil, target, marker, "plan", nil)
	if err != nil || res.Action != Updated || res.ID != own {
		t.Fatalf("upsert %+v, %v: want comment %d updated", res, err, own)
	}
	users := 0
	for _, c := range gh.Calls() {
		if c.Path == "/user" {
			users++
		}
	}
	if users != 1 {
		t.Fatalf("GET /user asked %d times: want once (the run without --author)", users)
	}
}

func TestUpsertErrorHidesToken(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	gh.AddToken("right", ciUser)
	srv := gh.Start(t)
	target := Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "canary-wrong-token"}
	_, err := Upsert(context.Background(), nil, target, marker, "x", nil)
	var ie *IdentityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error %v: want an *IdentityError with the 401", err)
	}
	if strings.Contains(err.Error(), "canary-wrong-token") {
		t.Fatalf("error %q leaks the token", err)
	}
}
