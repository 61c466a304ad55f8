package unleashtest

import (
	"net/http"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestStartSharesOneServer(t *testing.T) {
	a := Start(t)
	b := Start(t)
	if a != b {
		t.Fatalf("Start returned two servers (%s, %s); want the one shared server", a.BaseURL, b.BaseURL)
	}
	a.Call(t, http.MethodGet, "/api/admin/projects", nil).Want(t, http.StatusOK)
}
