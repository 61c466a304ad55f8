package api

import (
	"strings"
	"testing"
)

func TestErrorParsing(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, body, message string
	}{
		{"message", `{"message":"Invalid exposition","status":400}`, "Invalid exposition"},
		{"RFC 6749", `{"error":"invalid_client","error_description":"Bad credentials"}`, "invalid_client: Bad credentials"},
		{"error only", `{"error":"Bad Request"}`, "Bad Request"},
		{"errors array", `{"errors":[{"field":"name","message":"too long"}]}`, `[{"field":"name","message":"too long"}]`},
		{"plain text, first line", "upstream failed\nstack trace", "upstream failed"},
		{"empty", "", ""},
		{"JSON without a message", `{"code":12}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewError("PATCH", "/feature-flags/x/y/production", 400, []byte(tt.body))
			if e.Message != tt.message {
				t.Errorf("message = %q, want %q", e.Message, tt.message)
			}
			want := "PATCH /feature-flags/x/y/production: 400 Bad Request"
			if tt.message != "" {
				want += ": " + tt.message
			}
			if e.Error() != want {
				t.Errorf("Error() = %q, want %q", e.Error(), want)
			}
		})
	}
	e := NewError("GET", "/x", 502, []byte(long))
	if len(e.Body) > maxErrorBody+20 || !e.Retryable || len(e.Message) > 310 {
		t.Errorf("long body kept as %d bytes, message %d bytes, retryable %v", len(e.Body), len(e.Message), e.Retryable)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"access_token":"abc.def-123","expires_in":7200}`, `{"access_token":"[REDACTED]","expires_in":7200}`},
		{`grant_type=client_credentials&client_id=id&client_secret=s3cr3t%21`, `grant_type=client_credentials&client_id=id&client_secret=[REDACTED]`},
		{`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x_y`, `Authorization: Bearer [REDACTED]`},
		{`echo: known-secret-value here`, `echo: [REDACTED] here`},
		{`nothing secret`, `nothing secret`},
		{`Unauthorized: a Bearer token is required`, `Unauthorized: a Bearer token is required`},
	}
	for _, tt := range tests {
		if got := string(Redact([]byte(tt.in), "known-secret-value", "")); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
