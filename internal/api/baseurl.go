package api

import (
	"fmt"
	"net/url"
)

// ParseBaseURL parses an API's base URL as every vendor's client takes it: http or
// https, a host, and an optional path prefix; no query.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("base URL %q: want http(s)://host[/prefix]", raw)
	}
	return u, nil
}
