package promote

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Settings is the `promote:` key of flagsync.yaml: what differs between environments and
// must not be copied from one to the other.
type Settings struct {
	// Segments maps segment ids by source environment: Segments["staging"]["403694"] =
	// "403700" writes 403700 in the target where staging's block says 403694. Ids are
	// compared as the text written.
	Segments map[string]map[string]string `yaml:"segments"`
	// Keep lists paths, relative to an environment block (rolloutRules[*].exposition,
	// featureEnabled, rolloutRules[name=beta testers].state), whose value in the target
	// block is kept instead of being copied from the source.
	Keep []string `yaml:"keep"`
	// SegmentKeys names the fields that hold segment ids; empty means ["segmentId"]
	// (Kameleoon). A field's value is mapped when it is a scalar, or each scalar of a list.
	SegmentKeys []string `yaml:"segmentKeys"`
}

// ParseSettings reads the value of the `promote:` key of flagsync.yaml. Problems name
// the line and the field.
func ParseSettings(node *yaml.Node) (Settings, error) {
	var s Settings
	if node == nil || (node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null") {
		return s, nil
	}
	if node.Kind != yaml.MappingNode {
		return s, fmt.Errorf("line %d: promote: must be a mapping {segments, keep}", node.Line)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		switch k.Value {
		case "segments", "keep", "segmentKeys":
		default:
			return s, fmt.Errorf("line %d: promote.%s: unknown key (promote has segments, keep and segmentKeys)", k.Line, k.Value)
		}
		if k.Value == "segments" {
			if err := checkSegments(v); err != nil {
				return s, err
			}
		}
	}
	if err := node.Decode(&s); err != nil {
		return s, fmt.Errorf("promote: %w", err)
	}
	for _, p := range s.Keep {
		if _, err := parsePath(p); err != nil {
			return s, fmt.Errorf("promote.keep: %w", err)
		}
	}
	return s, nil
}

// checkSegments checks that segments is a map of environment to a map of scalar ids.
func checkSegments(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: promote.segments: must map environments to {source id: target id}", v.Line)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		env, ids := v.Content[i], v.Content[i+1]
		if ids.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: promote.segments.%s: must map source ids to target ids", ids.Line, env.Value)
		}
		for j := 0; j+1 < len(ids.Content); j += 2 {
			for _, n := range ids.Content[j : j+2] {
				if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
					return fmt.Errorf("line %d: promote.segments.%s: ids must be numbers or names", n.Line, env.Value)
				}
			}
		}
	}
	return nil
}

// segmentKeys are the fields holding segment ids.
func (s Settings) segmentKeys() []string {
	if len(s.SegmentKeys) == 0 {
		return []string{"segmentId"}
	}
	return s.SegmentKeys
}

// step is one segment of a keep path: a key, then optionally a list selector.
type step struct {
	key string
	// sel is the list selector after the key: "" none, "*" every element, "n" an index,
	// or field=value.
	sel      string
	hasSel   bool
	selField string
	selValue string
	selIndex int
}

// parsePath reads a path such as rolloutRules[name=beta testers].exposition. A leading
// environments.<env>. is allowed and dropped, so paths can be written as in ignore lists.
func parsePath(p string) ([]step, error) {
	orig := p
	if rest, ok := strings.CutPrefix(p, "environments."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			p = rest[i+1:]
		}
	}
	var steps []step
	for p != "" {
		var st step
		i := strings.IndexAny(p, ".[")
		if i < 0 {
			st.key, p = p, ""
		} else {
			st.key, p = p[:i], p[i:]
		}
		if st.key == "" {
			return nil, fmt.Errorf("path %q: empty field name", orig)
		}
		if strings.HasPrefix(p, "[") {
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: missing ]", orig)
			}
			st.hasSel, st.sel, p = true, p[1:end], p[end+1:]
			switch {
			case st.sel == "*":
			case strings.Contains(st.sel, "="):
				st.selField, st.selValue, _ = strings.Cut(st.sel, "=")
			default:
				if _, err := fmt.Sscanf(st.sel, "%d", &st.selIndex); err != nil || st.selIndex < 0 {
					return nil, fmt.Errorf("path %q: [%s] is neither *, an index nor field=value", orig, st.sel)
				}
			}
		}
		if strings.HasPrefix(p, ".") {
			p = p[1:]
			if p == "" {
				return nil, fmt.Errorf("path %q: ends with a dot", orig)
			}
		} else if p != "" {
			return nil, fmt.Errorf("path %q: unexpected %q", orig, p)
		}
		steps = append(steps, st)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("path %q: empty", orig)
	}
	if steps[len(steps)-1].hasSel {
		return nil, fmt.Errorf("path %q: must end at a field, not a list element", orig)
	}
	return steps, nil
}
