package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// payload is what a push delivery says, whatever the host: the refs it changed.
type payload struct {
	repository string
	changes    []refChange
}

type refKind int

const (
	refOther refKind = iota
	refBranch
	refTag
)

// refChange is one ref a push moved.
type refChange struct {
	kind          refKind
	name          string // short name: "main", "v1.2.0"
	before, after string
	deleted       bool
	files         []string // nil: unknown
}

// githubMaxCommits is the most commits GitHub lists in a push payload; a list that long
// may have been cut, so the changed files are then unknown.
const githubMaxCommits = 2048

// parse reads a verified push payload. The error says what was wrong with the payload;
// it never contains the secret (the parsers never see it).
func parse(provider string, body []byte) (payload, error) {
	switch provider {
	case ProviderGitHub, ProviderGitLab, ProviderGitea, ProviderForgejo, ProviderGogs:
		return parseHub(body)
	case ProviderBitbucketCloud:
		return parseBitbucketCloud(body)
	case ProviderBitbucketServer:
		return parseBitbucketServer(body)
	case ProviderGeneric:
		return parseGeneric(body)
	}
	return payload{}, fmt.Errorf("parse push from %s: no parser", provider)
}

// find picks the change to the tracked branch; a non-empty reason says why there is none.
func (p payload) find(branch string) (refChange, string) {
	if len(p.changes) == 0 {
		return refChange{}, ReasonNoRefsChanged
	}
	tags, others := 0, 0
	for _, c := range p.changes {
		switch {
		case c.kind == refBranch && c.name == branch:
			if c.deleted {
				return refChange{}, ReasonDeleted
			}
			return c, ""
		case c.kind == refTag:
			tags++
		case c.kind == refOther:
			others++
		}
	}
	switch {
	case tags == len(p.changes):
		return refChange{}, ReasonTag
	case others == len(p.changes):
		return refChange{}, ReasonOtherRef
	}
	return refChange{}, ReasonOtherBranch
}

// hubCommit is a commit as GitHub, GitLab, Gitea, Forgejo and Gogs list it. A nil list
// means the host did not send it (a present but empty list unmarshals non-nil).
type hubCommit struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// hubPush is the push payload shared, in the fields used here, by GitHub, GitLab
// ("Push Hook"), Gitea, Forgejo and Gogs.
type hubPush struct {
	Ref     string      `json:"ref"`
	Before  string      `json:"before"`
	After   string      `json:"after"`
	Deleted bool        `json:"deleted"` // GitHub
	Forced  bool        `json:"forced"`  // GitHub
	Commits []hubCommit `json:"commits"`
	// Hosts that cap the commit list say how many there were.
	TotalCommits      *int `json:"total_commits"`       // Gitea, Forgejo
	TotalCommitsCount *int `json:"total_commits_count"` // GitLab
	Repository        *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Project *struct { // GitLab
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
}

func parseHub(body []byte) (payload, error) {
	var p hubPush
	if err := json.Unmarshal(body, &p); err != nil {
		return payload{}, fmt.Errorf("decode push payload: %w", err)
	}
	if p.Ref == "" {
		return payload{}, errors.New("decode push payload: no ref")
	}
	if !isCommitID(p.After) {
		return payload{}, errors.New("decode push payload: after is not a commit id")
	}
	if p.Before != "" && !isCommitID(p.Before) {
		return payload{}, errors.New("decode push payload: before is not a commit id")
	}
	c := refChange{before: p.Before, after: p.After, deleted: p.Deleted || isZeroID(p.After)}
	c.kind, c.name = splitRef(p.Ref, false)

	total := -1
	switch {
	case p.TotalCommits != nil:
		total = *p.TotalCommits
	case p.TotalCommitsCount != nil:
		total = *p.TotalCommitsCount
	}
	if !c.deleted && !p.Forced && p.Before != "" && !isZeroID(p.Before) {
		c.files = changedFiles(p.Commits, total)
	}

	out := payload{changes: []refChange{c}}
	switch {
	case p.Repository != nil && p.Repository.FullName != "":
		out.repository = p.Repository.FullName
	case p.Project != nil:
		out.repository = p.Project.PathWithNamespace
	}
	return out, nil
}

// changedFiles merges the files the commits list, or returns nil when the list cannot
// be trusted to be complete.
func changedFiles(commits []hubCommit, total int) []string {
	if len(commits) == 0 || len(commits) >= githubMaxCommits || total > len(commits) {
		return nil
	}
	files := []string{}
	seen := map[string]bool{}
	for _, c := range commits {
		if c.Added == nil && c.Removed == nil && c.Modified == nil {
			return nil // this host does not list files per commit
		}
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
	}
	return files
}

// bitbucketCloudRef is a branch or tag in a Bitbucket Cloud repo:push change.
type bitbucketCloudRef struct {
	Type   string `json:"type"` // "branch", "tag", "annotated_tag"
	Name   string `json:"name"`
	Target *struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bitbucketCloudPush struct {
	Push *struct {
		Changes []struct {
			New    *bitbucketCloudRef `json:"new"` // null: the ref was deleted
			Old    *bitbucketCloudRef `json:"old"` // null: the ref was created
			Forced bool               `json:"forced"`
		} `json:"changes"`
	} `json:"push"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// parseBitbucketCloud reads a repo:push payload. Bitbucket does not list changed files,
// so they are always unknown.
func parseBitbucketCloud(body []byte) (payload, error) {
	var p bitbucketCloudPush
	if err := json.Unmarshal(body, &p); err != nil {
		return payload{}, fmt.Errorf("decode repo:push payload: %w", err)
	}
	if p.Push == nil {
		return payload{}, errors.New("decode repo:push payload: no push")
	}
	var out payload
	if p.Repository != nil {
		out.repository = p.Repository.FullName
	}
	for i, ch := range p.Push.Changes {
		ref := ch.New
		if ref == nil {
			ref = ch.Old
		}
		if ref == nil {
			return payload{}, fmt.Errorf("decode repo:push payload: change %d: neither new nor old", i)
		}
		c := refChange{name: ref.Name, deleted: ch.New == nil}
		switch ref.Type {
		case "branch", "named_branch":
			c.kind = refBranch
		case "tag", "annotated_tag":
			c.kind = refTag
		}
		if ch.New != nil {
			if ch.New.Target == nil || !isCommitID(ch.New.Target.Hash) {
				return payload{}, fmt.Errorf("decode repo:push payload: change %d: new target is not a commit id", i)
			}
			c.after = ch.New.Target.Hash
		}
		if ch.Old != nil && ch.Old.Target != nil {
			c.before = ch.Old.Target.Hash
		}
		out.changes = append(out.changes, c)
	}
	return out, nil
}

type bitbucketServerPush struct {
	Changes *[]struct {
		Ref *struct {
			ID        string `json:"id"`
			DisplayID string `json:"displayId"`
			Type      string `json:"type"` // "BRANCH", "TAG"
		} `json:"ref"`
		RefID    string `json:"refId"`
		FromHash string `json:"fromHash"`
		ToHash   string `json:"toHash"`
		Type     string `json:"type"` // "ADD", "UPDATE", "DELETE"
	} `json:"changes"`
	Repository *struct {
		Slug    string `json:"slug"`
		Project *struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"repository"`
}

// parseBitbucketServer reads a Bitbucket Server / Data Center repo:refs_changed
// payload. It does not list changed files, so they are always unknown.
func parseBitbucketServer(body []byte) (payload, error) {
	var p bitbucketServerPush
	if err := json.Unmarshal(body, &p); err != nil {
		return payload{}, fmt.Errorf("decode repo:refs_changed payload: %w", err)
	}
	if p.Changes == nil {
		return payload{}, errors.New("decode repo:refs_changed payload: no changes")
	}
	var out payload
	if r := p.Repository; r != nil && r.Project != nil && r.Project.Key != "" && r.Slug != "" {
		out.repository = r.Project.Key + "/" + r.Slug
	}
	for i, ch := range *p.Changes {
		refID := ch.RefID
		if refID == "" && ch.Ref != nil {
			refID = ch.Ref.ID
		}
		if refID == "" {
			return payload{}, fmt.Errorf("decode repo:refs_changed payload: change %d: no ref", i)
		}
		c := refChange{before: ch.FromHash, after: ch.ToHash, deleted: ch.Type == "DELETE" || isZeroID(ch.ToHash)}
		c.kind, c.name = splitRef(refID, false)
		if !c.deleted && !isCommitID(ch.ToHash) {
			return payload{}, fmt.Errorf("decode repo:refs_changed payload: change %d: toHash is not a commit id", i)
		}
		out.changes = append(out.changes, c)
	}
	return out, nil
}

// genericPush is flagsync's own minimal push form, for hosts without a native parser.
type genericPush struct {
	Ref        string `json:"ref"` // "refs/heads/main" or "main"
	Before     string `json:"before"`
	After      string `json:"after"`
	Repository string `json:"repository"`
}

func parseGeneric(body []byte) (payload, error) {
	var p genericPush
	if err := json.Unmarshal(body, &p); err != nil {
		return payload{}, fmt.Errorf("decode generic push: %w", err)
	}
	if p.Ref == "" {
		return payload{}, errors.New("decode generic push: no ref")
	}
	if !isCommitID(p.After) {
		return payload{}, errors.New("decode generic push: after is not a commit id")
	}
	if p.Before != "" && !isCommitID(p.Before) {
		return payload{}, errors.New("decode generic push: before is not a commit id")
	}
	c := refChange{before: p.Before, after: p.After, deleted: isZeroID(p.After)}
	c.kind, c.name = splitRef(p.Ref, true)
	return payload{repository: p.Repository, changes: []refChange{c}}, nil
}

// splitRef classifies a full ref name. With bareIsBranch, a name without "refs/" is a
// branch name (the generic form allows "main").
func splitRef(ref string, bareIsBranch bool) (refKind, string) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return refBranch, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		return refTag, strings.TrimPrefix(ref, "refs/tags/")
	case bareIsBranch && !strings.HasPrefix(ref, "refs/"):
		return refBranch, ref
	}
	return refOther, ref
}

// isCommitID reports whether s is a full SHA-1 or SHA-256 object id in hex.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isZeroID reports whether s is the all-zero id hosts send for a created or deleted ref.
func isZeroID(s string) bool {
	return s != "" && strings.Trim(s, "0") == "" && isCommitID(s)
}
