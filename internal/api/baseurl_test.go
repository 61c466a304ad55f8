package api

import "testing"

func TestParseBaseURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://api.example.com":         true,
		"http://127.0.0.1:8080/prefix/":   true,
		"ftp://api.example.com":           false,
		"https://":                        false,
		"api.example.com":                 false,
		"https://api.example.com/?a=b":    false,
		"https://api.example.com:bad/%zz": false,
	} {
		u, err := ParseBaseURL(raw)
		if (err == nil) != ok || (ok && u.String() != raw) {
			t.Errorf("ParseBaseURL(%q) = %v, %v; want ok=%v", raw, u, err, ok)
		}
		if !ok && err != nil && err.Error() != `base URL "`+raw+`": want http(s)://host[/prefix]` {
			t.Errorf("ParseBaseURL(%q) error %q", raw, err)
		}
	}
}
