package splitplan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strconv"

	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// This file is where Split's definitions are compared, once: Normalise (the model's)
// gives both sides one form, matchTreatments, lcs and sameSet align them, and both the
// patch below and the plan's account of a change (definitionDiff) are built on that.

// DefinitionPatch returns the RFC 6902 patch that turns the live definition into want,
// as small as flagsync can make it:
//
//   - killed, impressionsDisabled, trafficAllocation, defaultTreatment and
//     baselineTreatment are replaced (or added, or removed when the file leaves
//     baselineTreatment out);
//   - treatments are matched by name; a live treatment and a new one at the same index
//     are a rename (replace /treatments/i/name), and rules and the default rule follow
//     by their own diffs, so a rename is one patch;
//   - a treatment's keys and segments are sets, edited element by element so that a
//     concurrent change to other elements survives: new ones are appended (/keys/-, or
//     the whole list when the treatment had none), gone ones removed by index from the
//     highest down, and one gone with one new is a replace of that index (when no
//     element is kept, the list is replaced whole if that is smaller);
//   - rules are aligned with a longest common subsequence: unchanged rules stay, a
//     changed rule is patched in place (or replaced whole when that is smaller), others
//     are removed (highest index first) or added at their index;
//   - every replace, remove or move by index is preceded by a test of the value it
//     expects there (a treatment's name, a key, a rule), so that a concurrent edit that
//     shifted the list makes the server refuse the whole patch instead of changing the
//     wrong element.
//
// Test values come from live.Wire when set (the definition exactly as the server returned
// it), so that members the server adds do not make a test fail. An empty patch means the
// definitions are equal.
func DefinitionPatch(live, want splitmodel.Definition) jsonpatch.Patch {
	live, want = splitmodel.Normalise(live), splitmodel.Normalise(want)
	p := &patcher{raw: rawDefinition(live)}
	p.treatments(live.Treatments, want.Treatments)
	p.rules(live.Rules, want.Rules)
	if !reflect.DeepEqual(live.DefaultRule, want.DefaultRule) {
		p.list("/defaultRule", p.raw["defaultRule"], toJSONBytes(splitclient.EncodeBuckets(want.DefaultRule)))
	}
	p.member(p.raw, "", "defaultTreatment", live.DefaultTreatment, want.DefaultTreatment, false)
	p.member(p.raw, "", "baselineTreatment", live.BaselineTreatment, want.BaselineTreatment, want.BaselineTreatment == "")
	p.member(p.raw, "", "trafficAllocation", live.Allocation(), want.Allocation(), false)
	p.member(p.raw, "", "killed", live.Killed, want.Killed, false)
	p.member(p.raw, "", "impressionsDisabled", live.ImpressionsDisabled, want.ImpressionsDisabled, false)
	return p.ops
}

// FlagPatch returns the patch of a flag's own fields (description and tags) that turns
// live into the given values; tags are a set. Empty when nothing differs.
func FlagPatch(live *splitmodel.Flag, description string, tags []string) jsonpatch.Patch {
	var ops jsonpatch.Patch
	set := func(name string, present bool, v any) {
		op := jsonpatch.OpReplace
		if !present {
			op = jsonpatch.OpAdd
		}
		ops = append(ops, jsonpatch.Operation{Op: op, Path: "/" + name, Value: v})
	}
	if live.Description != description {
		set("description", live.Description != "", description)
	}
	if !sameSet(live.Tags, tags) {
		set("tags", len(live.Tags) > 0, splitclient.EncodeTags(tags))
	}
	return ops
}

// patcher collects the operations of one definition patch.
type patcher struct {
	raw map[string]any // the live definition as the server holds it
	ops jsonpatch.Patch
}

func (p *patcher) add(path string, v any) {
	p.ops = append(p.ops, jsonpatch.Operation{Op: jsonpatch.OpAdd, Path: path, Value: v})
}
func (p *patcher) test(path string, v any) {
	p.ops = append(p.ops, jsonpatch.Operation{Op: jsonpatch.OpTest, Path: path, Value: v})
}
func (p *patcher) replace(path string, v any) {
	p.ops = append(p.ops, jsonpatch.Operation{Op: jsonpatch.OpReplace, Path: path, Value: v})
}
func (p *patcher) remove(path string) {
	p.ops = append(p.ops, jsonpatch.Operation{Op: jsonpatch.OpRemove, Path: path})
}

// member sets one member of the object raw (at pointer base): replace when the member
// exists, add when it does not, remove when drop is set (the file leaves it out).
func (p *patcher) member(raw map[string]any, base, name string, old, new any, drop bool) {
	if old == new {
		return
	}
	_, present := raw[name]
	path := base + "/" + jsonpatch.Escape(name)
	switch {
	case drop && present:
		p.remove(path)
	case drop:
	case present:
		p.replace(path, new)
	default:
		p.add(path, new)
	}
}

// --- treatments ---------------------------------------------------------------------

func (p *patcher) treatments(live, want []splitmodel.Treatment) {
	rawList, _ := p.raw["treatments"].([]any)
	partner := matchTreatments(live, want)

	// In-place changes first, while every live index still holds.
	for i := range live {
		if j := partner[i]; j >= 0 {
			var raw map[string]any
			if i < len(rawList) {
				raw, _ = rawList[i].(map[string]any)
			}
			p.treatment(i, raw, live[i], want[j])
		}
	}
	// Removals from the highest index down, so that lower indexes stay valid.
	for i := len(live) - 1; i >= 0; i-- {
		if partner[i] < 0 {
			p.test(jsonpatch.Pointer("treatments", i, "name"), live[i].Name)
			p.remove(jsonpatch.Pointer("treatments", i))
		}
	}
	// Then new treatments at their place, and moves where the order changed.
	var cur []string
	for i := range live {
		if partner[i] >= 0 {
			cur = append(cur, want[partner[i]].Name)
		}
	}
	if len(live) == 0 && len(want) > 0 {
		if _, present := p.raw["treatments"]; !present {
			all := make([]json.RawMessage, len(want))
			for j := range want {
				all[j] = splitclient.EncodeTreatment(want[j])
			}
			p.add("/treatments", all)
			return
		}
	}
	for j := range want {
		name := want[j].Name
		k := slices.Index(cur, name)
		if k < 0 {
			path := jsonpatch.Pointer("treatments", j)
			if j == len(cur) {
				path = "/treatments/-"
			}
			p.add(path, splitclient.EncodeTreatment(want[j]))
			cur = slices.Insert(cur, j, name)
			continue
		}
		if k != j {
			p.test(jsonpatch.Pointer("treatments", k, "name"), name)
			p.ops = append(p.ops, jsonpatch.Operation{Op: jsonpatch.OpMove, From: jsonpatch.Pointer("treatments", k), Path: jsonpatch.Pointer("treatments", j)})
			cur = slices.Insert(slices.Delete(cur, k, k+1), j, name)
		}
	}
}

// matchTreatments pairs each live treatment with the desired one it becomes: the one
// of the same name, or, for a live treatment Git no longer names, the desired treatment
// at the same index when its name is new in Git (a rename: same place, new name).
// partner[i] is the index in want of live treatment i, or -1 when it is removed. Of
// duplicate live names, the first is the one matched. The patch and the plan's account
// of a definition's changes both align treatments with it.
func matchTreatments(live, want []splitmodel.Treatment) (partner []int) {
	liveAt := make(map[string]int, len(live))
	for i := range live {
		if _, dup := liveAt[live[i].Name]; !dup {
			liveAt[live[i].Name] = i
		}
	}
	wantAt := make(map[string]int, len(want))
	for j := range want {
		wantAt[want[j].Name] = j
	}
	partner = make([]int, len(live))
	for i := range live {
		partner[i] = -1
		if j, ok := wantAt[live[i].Name]; ok && liveAt[live[i].Name] == i {
			partner[i] = j
		}
	}
	for i := range live {
		if partner[i] >= 0 || i >= len(want) {
			continue
		}
		if _, exists := liveAt[want[i].Name]; !exists {
			partner[i] = i
		}
	}
	return partner
}

// treatment patches live treatment i (raw as the server holds it) into want. One test
// of the treatment's name guards all its changes.
func (p *patcher) treatment(i int, raw map[string]any, old, want splitmodel.Treatment) {
	base := jsonpatch.Pointer("treatments", i)
	guarded := false
	guard := func() {
		if !guarded {
			p.test(base+"/name", old.Name)
			guarded = true
		}
	}
	if old.Name != want.Name {
		guard()
		p.replace(base+"/name", want.Name)
	}
	if old.Description != want.Description {
		guard()
		p.member(raw, base, "description", old.Description, want.Description, want.Description == "")
	}
	if !SameJSONText(old.Configurations, want.Configurations) {
		guard()
		p.member(raw, base, "configurations", old.Configurations, want.Configurations, want.Configurations == "")
	}
	for _, l := range []struct {
		name      string
		old, want []string
	}{{"keys", old.Keys, want.Keys}, {"segments", old.Segments, want.Segments}} {
		if sameSet(l.old, l.want) {
			continue
		}
		guard()
		p.set(base+"/"+l.name, raw[l.name], l.old, l.want)
	}
}

// set patches a list of strings compared as a set (individual targets).
func (p *patcher) set(path string, raw any, old, want []string) {
	if len(old) == 0 {
		p.add(path, want) // the vendor's "add a key to a treatment with no keys"
		return
	}
	inWant := make(map[string]bool, len(want))
	for _, s := range want {
		inWant[s] = true
	}
	inOld := make(map[string]bool, len(old))
	for _, s := range old {
		inOld[s] = true
	}
	var gone []int // indexes of live values Git dropped, ascending
	for i, s := range old {
		if !inWant[s] {
			gone = append(gone, i)
		}
	}
	var added []string
	for _, s := range want {
		if !inOld[s] && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}

	var each jsonpatch.Patch
	pairs := min(len(gone), len(added))
	for k := range pairs {
		at := path + "/" + strconv.Itoa(gone[k])
		each = append(each,
			jsonpatch.Operation{Op: jsonpatch.OpTest, Path: at, Value: old[gone[k]]},
			jsonpatch.Operation{Op: jsonpatch.OpReplace, Path: at, Value: added[k]})
	}
	for k := len(gone) - 1; k >= pairs; k-- {
		at := path + "/" + strconv.Itoa(gone[k])
		each = append(each,
			jsonpatch.Operation{Op: jsonpatch.OpTest, Path: at, Value: old[gone[k]]},
			jsonpatch.Operation{Op: jsonpatch.OpRemove, Path: at})
	}
	for _, s := range added[pairs:] {
		each = append(each, jsonpatch.Operation{Op: jsonpatch.OpAdd, Path: path + "/-", Value: s})
	}
	if len(gone) < len(old) {
		// Elements are edited one by one, so that a concurrent change to the others
		// survives.
		p.ops = append(p.ops, each...)
		return
	}
	// Nothing is kept: the list may as well be replaced whole, if that is smaller.
	if raw == nil {
		raw = old
	}
	if want == nil {
		want = []string{}
	}
	whole := jsonpatch.Patch{
		{Op: jsonpatch.OpTest, Path: path, Value: raw},
		{Op: jsonpatch.OpReplace, Path: path, Value: want},
	}
	p.ops = append(p.ops, smaller(each, whole)...)
}

// --- rules --------------------------------------------------------------------------

func (p *patcher) rules(live, want []splitmodel.Rule) {
	if reflect.DeepEqual(live, want) {
		return
	}
	rawAny, present := p.raw["rules"]
	rawList, _ := rawAny.([]any)
	if !present || len(live) == 0 && len(rawList) == 0 && rawAny == nil {
		all := make([]json.RawMessage, len(want))
		for j := range want {
			all[j] = splitclient.EncodeRule(want[j])
		}
		op := jsonpatch.OpAdd
		if present {
			op = jsonpatch.OpReplace
		}
		p.ops = append(p.ops, jsonpatch.Operation{Op: op, Path: "/rules", Value: all})
		return
	}
	rawRule := func(i int) any {
		if i < len(rawList) {
			return rawList[i]
		}
		return toJSONBytes(splitclient.EncodeRule(live[i]))
	}

	type pair struct{ live, want int }
	anchors := lcs(len(live), len(want), func(i, j int) bool { return reflect.DeepEqual(live[i], want[j]) })
	anchors = append(anchors, [2]int{len(live), len(want)})
	var inPlace []pair
	var removed []int
	var inserted []int
	i, j := 0, 0
	for _, a := range anchors {
		n := min(a[0]-i, a[1]-j)
		for k := range n {
			inPlace = append(inPlace, pair{i + k, j + k})
		}
		for k := i + n; k < a[0]; k++ {
			removed = append(removed, k)
		}
		for k := j + n; k < a[1]; k++ {
			inserted = append(inserted, k)
		}
		i, j = a[0]+1, a[1]+1
	}
	for _, pr := range inPlace {
		path := jsonpatch.Pointer("rules", pr.live)
		old, nw := rawRule(pr.live), toJSONBytes(splitclient.EncodeRule(want[pr.want]))
		whole := jsonpatch.Patch{{Op: jsonpatch.OpTest, Path: path, Value: old}, {Op: jsonpatch.OpReplace, Path: path, Value: nw}}
		p.ops = append(p.ops, smaller(diff(path, old, nw), whole)...)
	}
	for k := len(removed) - 1; k >= 0; k-- {
		path := jsonpatch.Pointer("rules", removed[k])
		p.test(path, rawRule(removed[k]))
		p.remove(path)
	}
	length := len(live) - len(removed)
	for _, k := range inserted {
		path := jsonpatch.Pointer("rules", k)
		if k == length {
			path = "/rules/-"
		}
		p.add(path, splitclient.EncodeRule(want[k]))
		length++
	}
}

// lcs returns the index pairs of a longest common subsequence of two sequences of
// lengths n and m, in order.
func lcs(n, m int, eq func(i, j int) bool) [][2]int {
	t := make([][]int, n+1)
	for i := range t {
		t[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if eq(i, j) {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case eq(i, j):
			out = append(out, [2]int{i, j})
			i++
			j++
		case t[i+1][j] >= t[i][j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

// list patches a list member (the default rule): in place, or whole when that is
// smaller, or added when the server has none.
func (p *patcher) list(path string, old, want any) {
	if old == nil {
		if _, present := p.raw[path[1:]]; present {
			p.replace(path, want)
		} else {
			p.add(path, want)
		}
		return
	}
	whole := jsonpatch.Patch{{Op: jsonpatch.OpTest, Path: path, Value: old}, {Op: jsonpatch.OpReplace, Path: path, Value: want}}
	p.ops = append(p.ops, smaller(diff(path, old, want), whole)...)
}

// --- generic diff -------------------------------------------------------------------

// managed are the member names of the write shapes below a definition's lists. Other
// members (a condition's combiner, anything the server adds) are never removed and do
// not count as differences.
var managed = map[string]bool{
	"name": true, "configurations": true, "description": true, "keys": true, "segments": true,
	"buckets": true, "condition": true, "matchers": true, "treatment": true, "size": true,
	"type": true, "negate": true, "attribute": true, "string": true, "bool": true, "strings": true,
	"number": true, "date": true, "between": true, "from": true, "to": true, "depends": true, "splitName": true,
}

// diff returns the operations that turn old (as the server holds it) into want, member by
// member and index by index; every replace and remove is preceded by a test of the old
// value.
func diff(path string, old, want any) jsonpatch.Patch {
	if semanticEqual(old, want) {
		return nil
	}
	om, ok1 := old.(map[string]any)
	wm, ok2 := want.(map[string]any)
	if ok1 && ok2 {
		var ops jsonpatch.Patch
		for _, k := range sortedKeys(wm) {
			at := path + "/" + jsonpatch.Escape(k)
			ov, has := om[k]
			if !has {
				if !isZero(wm[k]) {
					ops = append(ops, jsonpatch.Operation{Op: jsonpatch.OpAdd, Path: at, Value: wm[k]})
				}
				continue
			}
			ops = append(ops, diff(at, ov, wm[k])...)
		}
		for _, k := range sortedKeys(om) {
			if _, kept := wm[k]; kept || !managed[k] || isZero(om[k]) {
				continue
			}
			at := path + "/" + jsonpatch.Escape(k)
			ops = append(ops, jsonpatch.Operation{Op: jsonpatch.OpTest, Path: at, Value: om[k]}, jsonpatch.Operation{Op: jsonpatch.OpRemove, Path: at})
		}
		return ops
	}
	oa, ok1 := old.([]any)
	wa, ok2 := want.([]any)
	if ok1 && ok2 && len(oa) == len(wa) {
		var ops jsonpatch.Patch
		for i := range oa {
			ops = append(ops, diff(path+"/"+strconv.Itoa(i), oa[i], wa[i])...)
		}
		return ops
	}
	return jsonpatch.Patch{{Op: jsonpatch.OpTest, Path: path, Value: old}, {Op: jsonpatch.OpReplace, Path: path, Value: want}}
}

// semanticEqual compares two JSON values the way the model does: members that are not
// managed are ignored, and a missing member equals null, false, "" or an empty list.
func semanticEqual(a, b any) bool {
	am, ok1 := a.(map[string]any)
	bm, ok2 := b.(map[string]any)
	if ok1 && ok2 {
		for k, av := range am {
			if !managed[k] {
				continue
			}
			bv, ok := bm[k]
			if !ok {
				if !isZero(av) {
					return false
				}
				continue
			}
			if !semanticEqual(av, bv) {
				return false
			}
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok && !isZero(bv) {
				return false
			}
		}
		return true
	}
	aa, ok1 := a.([]any)
	ba, ok2 := b.([]any)
	if ok1 && ok2 {
		if len(aa) != len(ba) {
			return false
		}
		for i := range aa {
			if !semanticEqual(aa[i], ba[i]) {
				return false
			}
		}
		return true
	}
	if isZero(a) && isZero(b) {
		return true
	}
	return jsonpatch.Equal(a, b)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// --- helpers ------------------------------------------------------------------------

// smaller returns the patch with fewer bytes on the wire; each wins a tie.
func smaller(each, whole jsonpatch.Patch) jsonpatch.Patch {
	if len(each.JSON()) <= len(whole.JSON()) {
		return each
	}
	return whole
}

// rawDefinition is the live definition as the server holds it: Wire decoded, or the write
// shape of the model when there is no Wire.
func rawDefinition(d splitmodel.Definition) map[string]any {
	if len(d.Wire) > 0 {
		if m, ok := toJSONBytes(d.Wire).(map[string]any); ok {
			return m
		}
	}
	m, _ := toJSONBytes(splitclient.EncodeDefinition(d)).(map[string]any)
	m["killed"] = d.Killed // the server always has it; the write shape leaves false out
	return m
}

// toJSONBytes decodes JSON (numbers as json.Number); nil when b is not JSON.
func toJSONBytes(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if dec.Decode(&out) != nil {
		return nil
	}
	return out
}

// sameSet reports whether two lists hold the same strings, whatever their order.
func sameSet(a, b []string) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}

// SameJSONText reports whether two configurations are the same JSON (whatever the
// spacing and member order), or the same text when either is not JSON.
func SameJSONText(a, b string) bool {
	if a == b {
		return true
	}
	va, vb := toJSONBytes([]byte(a)), toJSONBytes([]byte(b))
	if va == nil || vb == nil || !json.Valid([]byte(a)) || !json.Valid([]byte(b)) {
		return false
	}
	return jsonpatch.Equal(va, vb)
}
