package prcomment

import (
	"fmt"
	"net/http"

	"github.com/flagsync/flagsync/internal/codehost"
)

// Providers.
const (
	GitHub = "github"
	GitLab = "gitlab"
)

// Target is the pull or merge request a plan is reported on, and how to reach it.
type Target struct {
	// Provider is GitHub or GitLab.
	Provider string
	// APIURL is the API base: https://api.github.com, or GitLab's https://HOST/api/v4.
	APIURL string
	// Repo is "owner/name" on GitHub, the numeric id or full path on GitLab.
	Repo string
	// Number is the pull request number (GitHub) or merge request iid (GitLab).
	Number int
	// Token authenticates the calls; it is never printed.
	Token string

	// Author, when set, is the login whose comment is flagsync's: the host is not asked
	// who the token is. For tokens that cannot tell (a GitHub App's installation token).
	Author string
	// InstallationAuthor is who writes what an installation token posts, used when
	// GitHub refuses GET /user to the token: "github-actions[bot]" for Actions' own
	// GITHUB_TOKEN. Empty: such a token needs Author.
	InstallationAuthor string

	// SHA is the commit the status is set on: the pull request's head (not GitHub's
	// merge commit), or the merge request pipeline's commit.
	SHA string
	// TargetURL links the status to the CI job or run; optional.
	TargetURL string
	// PipelineID puts a GitLab status in that pipeline; 0 lets GitLab choose.
	PipelineID int64
}

// host is the client of the Target's provider: exactly one is set.
type host struct {
	gh *codehost.GitHub
	gl *codehost.GitLab
}

func (t Target) host(hc *http.Client) (host, error) {
	switch t.Provider {
	case GitHub:
		c, err := codehost.NewGitHub(hc, t.APIURL, t.Token)
		return host{gh: c}, err
	case GitLab:
		c, err := codehost.NewGitLab(hc, t.APIURL, t.Token)
		return host{gl: c}, err
	}
	return host{}, fmt.Errorf("provider %q: want %s or %s", t.Provider, GitHub, GitLab)
}

// Request names the pull or merge request for people: acme/flags#7 (GitHub) or
// group/project!7 (GitLab).
func (t Target) Request() string {
	if t.Provider == GitLab {
		return fmt.Sprintf("%s!%d", t.Repo, t.Number)
	}
	return fmt.Sprintf("%s#%d", t.Repo, t.Number)
}
