package splitsandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

const (
	onOffDef  = `{"treatments":[{"name":"on"},{"name":"off"}],"defaultTreatment":"off","defaultRule":[{"treatment":"off","size":100}]}`
	dependent = `{"treatments":[{"name":"on"},{"name":"off"}],"defaultTreatment":"off","rules":[{"condition":{"matchers":[{"type":"IN_SPLIT","depends":{"splitName":"gate","treatment":"on"}}]},"buckets":[{"treatment":"on","size":100}]}],"defaultRule":[{"treatment":"off","size":100}]}`
)

func (h *harness) flag(name string) {
	h.t.Helper()
	if r := h.do("POST", "/splits/ws/"+ws+"/trafficTypes/user", `{"name":"`+name+`","description":""}`); r.status != 200 {
		h.t.Fatalf("create %s: %d %s", name, r.status, r.body)
	}
}

func TestWorkspacesAndHarnessKeys(t *testing.T) {
	h := newHarness(t, Options{Workspaces: []string{"ws-1", "ws-2"}, WorkspaceNames: map[string]string{"ws-1": "Default"}, TitleAndCommentsRequired: []string{"ws-2"}})
	r := h.do("GET", "/workspaces?limit=1", "")
	if r.status != 200 || !strings.Contains(r.body, `"totalCount":2`) || !strings.Contains(r.body, `{"id":"ws-1","name":"Default","requiresTitleAndComments":false,"type":"workspace"}`) {
		t.Fatalf("workspaces page 1: %d %s", r.status, r.body)
	}
	r = h.do("GET", "/workspaces?offset=1&limit=1", "")
	if !strings.Contains(r.body, `{"id":"ws-2","name":"ws-2","requiresTitleAndComments":true,"type":"workspace"}`) {
		t.Fatalf("workspaces page 2: %s", r.body)
	}
	// A Harness key comes in x-api-key; Authorization is then not needed.
	if r := h.do("GET", "/workspaces", "", "Authorization", "", "x-api-key", DefaultAPIKey); r.status != 200 {
		t.Errorf("x-api-key: %d", r.status)
	}
	if r := h.do("GET", "/workspaces", "", "Authorization", "", "x-api-key", "wrong"); r.status != 401 {
		t.Errorf("wrong x-api-key: %d", r.status)
	}
	harness := newHarness(t, Options{HarnessKeys: true})
	if r := harness.do("GET", "/workspaces", ""); r.status != 401 {
		t.Errorf("Bearer where only x-api-key is taken: %d", r.status)
	}
	if r := harness.do("GET", "/workspaces", "", "Authorization", "", "x-api-key", DefaultAPIKey); r.status != 200 {
		t.Errorf("x-api-key where only it is taken: %d", r.status)
	}
}

func TestTitleAndCommentRequired(t *testing.T) {
	h := newHarness(t, Options{TitleAndCommentsRequired: []string{ws}})
	h.flag("f")
	path := "/splits/ws/" + ws + "/f/environments/Production"
	r := h.do("POST", path+"?title=only", onOffDef)
	if r.status != 400 || r.body != "" {
		t.Fatalf("without a comment: %d %q, want 400 with an empty body", r.status, r.body)
	}
	if r := h.do("POST", path+"?title=r1&comment=why", onOffDef); r.status != 200 {
		t.Fatalf("with both: %d %s", r.status, r.body)
	}
	if r := h.do("PATCH", path, `[{"op":"replace","path":"/killed","value":true}]`); r.status != 400 || r.body != "" {
		t.Errorf("patch without: %d %q", r.status, r.body)
	}
	if r := h.do("PUT", path+"/kill", `{}`); r.status != 400 {
		t.Errorf("kill without: %d", r.status)
	}
}

func TestPutWholeDefinitionAndDependencies(t *testing.T) {
	h := newHarness(t, Options{})
	h.flag("gate")
	h.flag("f")
	path := "/splits/ws/" + ws + "/f/environments/Production"
	// A definition may not name a flag that is not configured in its environment.
	if r := h.do("POST", path, dependent); r.status != 400 || !strings.Contains(r.body, `names feature flag \"gate\", which is not configured in environment Production`) {
		t.Fatalf("dependency missing: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/splits/ws/"+ws+"/gate/environments/Staging", onOffDef); r.status != 200 {
		t.Fatal(r.body)
	}
	if r := h.do("POST", path, dependent); r.status != 400 {
		t.Fatalf("dependency in another environment only: %d", r.status)
	}
	if r := h.do("POST", "/splits/ws/"+ws+"/gate/environments/Production", onOffDef); r.status != 200 {
		t.Fatal(r.body)
	}
	if r := h.do("POST", path, strings.Replace(dependent, `"treatment":"on"}`, `"treatment":"maybe"}`, 1)); r.status != 400 || !strings.Contains(r.body, `treatment \"maybe\"`) {
		t.Fatalf("unknown treatment of the dependency: %d %s", r.status, r.body)
	}
	if r := h.do("POST", path, dependent); r.status != 200 {
		t.Fatalf("dependency present: %d %s", r.status, r.body)
	}
	// PUT replaces the whole definition.
	r := h.do("PUT", path, strings.Replace(onOffDef, `"defaultTreatment":"off"`, `"defaultTreatment":"on","impressionsDisabled":true`, 1))
	if r.status != 200 || !strings.Contains(r.body, `"defaultTreatment":"on"`) || strings.Contains(r.body, "IN_SPLIT") || !strings.Contains(r.body, `"impressionsDisabled":true`) {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := h.do("PUT", "/splits/ws/"+ws+"/f/environments/Staging", onOffDef); r.status != 404 {
		t.Errorf("put where not configured: %d", r.status)
	}
	if r := h.do("PUT", path, `{"treatments":[{"name":"on"}],"defaultTreatment":"on","defaultRule":[{"treatment":"on","size":100}]}`); r.status != 400 || !strings.Contains(r.body, "at least 2 treatments") {
		t.Errorf("put of one treatment: %d %s", r.status, r.body)
	}
}

func TestLimitsAndKillAfterCreate(t *testing.T) {
	h := newHarness(t, Options{KillAfterCreate: true})
	h.flag("f")
	path := "/splits/ws/" + ws + "/f/environments/Production"
	list := make([]string, 501)
	for i := range list {
		list[i] = fmt.Sprintf(`"k%d"`, i)
	}
	keys := strings.Join(list, ",")
	for name, body := range map[string]string{
		"501 keys":           strings.Replace(onOffDef, `{"name":"on"}`, `{"name":"on","keys":[`+keys+`]}`, 1),
		"2 KB configuration": strings.Replace(onOffDef, `{"name":"on"}`, `{"name":"on","configurations":"{\"t\":\"`+strings.Repeat("x", 2000)+`\"}"}`, 1),
		"killed at creation": strings.Replace(onOffDef, `"defaultTreatment"`, `"killed":true,"defaultTreatment"`, 1),
	} {
		if r := h.do("POST", path, body); r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := h.do("POST", path, onOffDef); r.status != 200 {
		t.Fatal(r.body)
	}
	if r := h.do("PUT", path+"/kill", `{}`); r.status != 200 || !strings.Contains(r.body, `"killed":true`) {
		t.Errorf("kill after creation: %d %s", r.status, r.body)
	}
}

func TestApprovalFlow(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	h := newHarness(t, Options{ApprovalEnvironments: []string{"Production"}, StatePath: state})
	h.flag("f")
	path := "/splits/ws/" + ws + "/f/environments/Production"
	r := h.do("POST", path, onOffDef)
	if r.status != 403 || !strings.Contains(r.body, `"message":"Approvals are required. orgId=sandbox-org envId=env-Production"`) {
		t.Fatalf("direct write: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/splits/ws/"+ws+"/f/environments/Staging", onOffDef); r.status != 200 {
		t.Fatalf("Staging needs no approval: %d", r.status)
	}
	file := func(body string) reply {
		return h.do("POST", "/changeRequests/ws/"+ws+"/environments/env-Production", body)
	}
	cr := `{"split":` + strings.Replace(onOffDef, `{"treatments"`, `{"name":"f","treatments"`, 1) + `,"operationType":"CREATE","title":"t","comment":"c","approvers":["lead@example.com"]}`
	if r := file(strings.Replace(cr, `["lead@example.com"]`, `[]`, 1)); r.status != 400 {
		t.Errorf("no approver where submitters choose: %d", r.status)
	}
	if r := file(cr); r.status != 200 || !strings.Contains(r.body, `"status":"REQUESTED"`) || !strings.Contains(r.body, `"openChangeRequestId":"cr-1"`) {
		t.Fatalf("file: %d %s", r.status, r.body)
	}
	if r := file(cr); r.status != 409 {
		t.Errorf("a second open request for the same flag and environment: %d", r.status)
	}
	r = h.do("GET", "/changeRequests?environmentId=env-Production", "")
	var list struct {
		Data []struct {
			ID    string `json:"id"`
			Split struct {
				Name string `json:"name"`
			} `json:"split"`
		} `json:"data"`
		NextMarker *string `json:"nextMarker"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Data) != 1 || list.Data[0].Split.Name != "f" || list.NextMarker != nil {
		t.Fatalf("list: %s", r.body)
	}
	if r := h.do("GET", "/changeRequests?environmentId=Staging", ""); !strings.Contains(r.body, `"data":[]`) {
		t.Errorf("list of another environment: %s", r.body)
	}
	// The submitter cannot approve; the approver's key can, and the change is applied.
	if r := h.do("PUT", "/changeRequests/cr-1", `{"status":"APPROVED","comment":"ok"}`); r.status != 400 {
		t.Errorf("self-approval: %d", r.status)
	}
	if r := h.do("GET", path, ""); r.status != 404 {
		t.Errorf("before approval: %d", r.status)
	}
	r = h.do("PUT", "/changeRequests/cr-1", `{"status":"APPROVED","comment":"ok"}`, "Authorization", "Bearer "+DefaultApproverAPIKey)
	if r.status != 200 || !strings.Contains(r.body, `"status":"PUBLISHED"`) {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if r := h.do("GET", path, ""); r.status != 200 {
		t.Errorf("after approval: %d", r.status)
	}
	// A kill goes through a request too; the test hook rejects it.
	if r := file(`{"split":{"name":"f"},"operationType":"KILL","title":"t","comment":"c","approvers":["lead@example.com"]}`); r.status != 200 {
		t.Fatalf("kill request: %d %s", r.status, r.body)
	}
	if err := h.s.Reject("cr-2"); err != nil {
		t.Fatal(err)
	}
	crs := h.s.ChangeRequests()
	if len(crs) != 2 || crs[0].Status != StatusPublished || crs[1].Status != StatusRejected || crs[0].Comment != "c" || crs[0].Approvers[0] != "lead@example.com" {
		t.Errorf("change requests: %+v", crs)
	}
	// They survive a restart.
	again, err := New(Options{ApprovalEnvironments: []string{"Production"}, StatePath: state})
	if err != nil || len(again.ChangeRequests()) != 2 {
		t.Errorf("reload: %v", err)
	}
}

func TestRestrictedApprovers(t *testing.T) {
	h := newHarness(t, Options{ApprovalEnvironments: []string{"Production"}, RestrictedApprovers: true})
	h.flag("f")
	cr := `{"split":{"name":"f","treatments":[{"name":"on"},{"name":"off"}],"defaultTreatment":"off","defaultRule":[{"treatment":"off","size":100}]},"operationType":"CREATE","title":"t","comment":"c","approvers":["a@example.com"]}`
	r := h.do("POST", "/changeRequests/ws/"+ws+"/environments/Production", cr)
	if r.status != 400 || !strings.Contains(r.body, "Something was wrong") {
		t.Errorf("approvers where the environment defines them: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/changeRequests/ws/"+ws+"/environments/Production", strings.Replace(cr, `["a@example.com"]`, `[]`, 1)); r.status != 200 {
		t.Errorf("no approvers: %d %s", r.status, r.body)
	}
	if err := h.s.Approve("cr-1"); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/splits/ws/"+ws+"/f/environments/Production", ""); r.status != http.StatusOK {
		t.Errorf("approved by the hook: %d", r.status)
	}
}
