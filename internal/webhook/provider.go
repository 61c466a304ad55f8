package webhook

import (
	"net/http"
	"path"
)

// pathProviders maps the last path element of a per-provider URL to a provider.
// "gitea", "forgejo", "gogs" and "bitbucket" name families: the exact member is still
// read from the headers.
var pathProviders = map[string]string{
	"github":           ProviderGitHub,
	"gitlab":           ProviderGitLab,
	"gitea":            ProviderGitea,
	"forgejo":          ProviderForgejo,
	"gogs":             ProviderGogs,
	"bitbucket":        "bitbucket",
	"bitbucket-cloud":  ProviderBitbucketCloud,
	"bitbucket-server": ProviderBitbucketServer,
	"generic":          ProviderGeneric,
}

// detectProvider names the Git host a request comes from: forced by the last path
// element when that names a provider, recognised from the headers otherwise.
//
// Order matters: Gitea also sends X-GitHub-Event and X-Hub-Signature (SHA-1), and
// Forgejo also sends the X-Gitea-* headers, so the Gitea family is tried first.
func detectProvider(urlPath string, hd http.Header) string {
	switch forced := pathProviders[path.Base(urlPath)]; forced {
	case "":
	case ProviderGitea, ProviderForgejo, ProviderGogs:
		if p := giteaFamily(hd); p != "" {
			return p
		}
		return forced
	case "bitbucket":
		return bitbucketFamily(hd)
	default:
		return forced
	}
	if p := giteaFamily(hd); p != "" {
		return p
	}
	switch {
	case hd.Get("X-GitHub-Event") != "":
		return ProviderGitHub
	case hd.Get("X-Gitlab-Event") != "" || hd.Get("X-Gitlab-Token") != "":
		return ProviderGitLab
	case hd.Get("X-Event-Key") != "":
		return bitbucketFamily(hd)
	case hd.Get("X-Flagsync-Signature") != "":
		return ProviderGeneric
	}
	return ProviderUnknown
}

func giteaFamily(hd http.Header) string {
	switch {
	case hd.Get("X-Forgejo-Event") != "":
		return ProviderForgejo
	case hd.Get("X-Gitea-Event") != "":
		return ProviderGitea
	case hd.Get("X-Gogs-Event") != "":
		return ProviderGogs
	}
	return ""
}

// bitbucketFamily tells Bitbucket Cloud from Bitbucket Server (Data Center): Cloud
// sends X-Request-UUID and X-Hook-UUID, Server sends X-Request-Id; failing those the
// push event key differs (repo:push against repo:refs_changed).
func bitbucketFamily(hd http.Header) string {
	switch {
	case hd.Get("X-Request-UUID") != "" || hd.Get("X-Hook-UUID") != "":
		return ProviderBitbucketCloud
	case hd.Get("X-Request-Id") != "":
		return ProviderBitbucketServer
	case hd.Get("X-Event-Key") == "repo:push":
		return ProviderBitbucketCloud
	}
	return ProviderBitbucketServer
}

// deliveryID returns the id the host gives this delivery, used to drop redeliveries.
//
// GitLab: the signed webhook-id when the delivery is signed, else Idempotency-Key
// (both stay the same across GitLab's retries), else X-Gitlab-Event-UUID.
// Bitbucket Cloud: X-Request-UUID only; X-Hook-UUID names the webhook, not the
// delivery, so using it would drop every push after the first.
func deliveryID(provider string, hd http.Header) string {
	var names []string
	switch provider {
	case ProviderGitHub:
		names = []string{"X-GitHub-Delivery"}
	case ProviderGitLab:
		if hd.Get("webhook-signature") != "" {
			names = []string{"webhook-id"}
		} else {
			names = []string{"Idempotency-Key", "X-Gitlab-Event-UUID"}
		}
	case ProviderForgejo:
		names = []string{"X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery"}
	case ProviderGitea:
		names = []string{"X-Gitea-Delivery", "X-Gogs-Delivery"}
	case ProviderGogs:
		names = []string{"X-Gogs-Delivery"}
	case ProviderBitbucketCloud:
		names = []string{"X-Request-UUID"}
	case ProviderBitbucketServer:
		names = []string{"X-Request-Id"}
	case ProviderGeneric:
		names = []string{"X-Flagsync-Delivery"}
	}
	for _, n := range names {
		if v := hd.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// eventName returns the event header's value; the generic form has only pushes.
func eventName(provider string, hd http.Header) string {
	switch provider {
	case ProviderGitHub:
		return hd.Get("X-GitHub-Event")
	case ProviderGitLab:
		return hd.Get("X-Gitlab-Event")
	case ProviderForgejo:
		return firstHeader(hd, "X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event")
	case ProviderGitea:
		return firstHeader(hd, "X-Gitea-Event", "X-Gogs-Event")
	case ProviderGogs:
		return hd.Get("X-Gogs-Event")
	case ProviderBitbucketCloud, ProviderBitbucketServer:
		return hd.Get("X-Event-Key")
	case ProviderGeneric:
		return "push"
	}
	return ""
}

func firstHeader(hd http.Header, names ...string) string {
	for _, n := range names {
		if v := hd.Get(n); v != "" {
			return v
		}
	}
	return ""
}

type eventClass int

const (
	kindOther eventClass = iota
	kindPush
	kindPing
)

// eventKind classifies a provider's event name.
func eventKind(provider, event string) eventClass {
	switch provider {
	case ProviderGitHub:
		switch event {
		case "push":
			return kindPush
		case "ping":
			return kindPing
		}
	case ProviderGitLab:
		if event == "Push Hook" {
			return kindPush
		}
	case ProviderGitea, ProviderForgejo, ProviderGogs, ProviderGeneric:
		if event == "push" {
			return kindPush
		}
	case ProviderBitbucketCloud:
		if event == "repo:push" {
			return kindPush
		}
	case ProviderBitbucketServer:
		switch event {
		case "repo:refs_changed":
			return kindPush
		case "diagnostics:ping":
			return kindPing
		}
	}
	return kindOther
}
