package unleashclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

// get sends a GET and decodes its JSON answer into out.
func (c *Client) get(ctx context.Context, what, path string, out any) error {
	res, err := c.caller.Send(ctx, api.Call{Method: http.MethodGet, Path: path, Resend: true})
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if err := json.Unmarshal(res.Body, out); err != nil {
		return fmt.Errorf("read %s: decode: %w", what, err)
	}
	return nil
}

// ListFeatures returns a project's active flags with their metadata, tags and, per
// environment of the project, whether the flag is enabled and has strategies: one call, no
// paging.
func (c *Client) ListFeatures(ctx context.Context, project string) ([]unleashwire.ListedFeature, error) {
	var l unleashwire.FeatureList
	if err := c.get(ctx, "flags of project "+project, unleashwire.FeaturesPath(project), &l); err != nil {
		return nil, err
	}
	return l.Features, nil
}

// GetFeature returns one flag with its strategies in every environment of the project.
func (c *Client) GetFeature(ctx context.Context, project, name string) (unleashwire.Feature, error) {
	var f unleashwire.Feature
	err := c.get(ctx, "flag "+project+"/"+name, unleashwire.FeaturePath(project, name), &f)
	return f, err
}

// SegmentNames returns every segment's name by id.
func (c *Client) SegmentNames(ctx context.Context) (map[int]string, error) {
	var l unleashwire.SegmentList
	if err := c.get(ctx, "segments", unleashwire.SegmentsPath, &l); err != nil {
		return nil, err
	}
	out := make(map[int]string, len(l.Segments))
	for _, s := range l.Segments {
		out[s.ID] = s.Name
	}
	return out, nil
}

// ArchivedFeatures returns the names of a project's archived flags, sorted, through the
// feature search (the only read that shows archived flags): one call per 100 flags.
// Unleash allows 15 searches a minute per client: when an answer says none is left, the
// next search waits for the window to reset, and a 429 waits as Retry-After says.
func (c *Client) ArchivedFeatures(ctx context.Context, project string) ([]string, error) {
	var names []string
	for offset := 0; ; {
		var page unleashwire.SearchResult
		if err := c.search(ctx, project, offset, &page); err != nil {
			return nil, fmt.Errorf("read archived flags of project %s: %w", project, err)
		}
		for _, f := range page.Features {
			names = append(names, f.Name)
		}
		offset += len(page.Features)
		if len(page.Features) == 0 || offset >= page.Total {
			break
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// search reads one page of archived flags, within Unleash's search rate limit.
func (c *Client) search(ctx context.Context, project string, offset int, out *unleashwire.SearchResult) error {
	c.searchMu.Lock()
	wait := c.searchUntil.Sub(c.cfg.Now())
	c.searchMu.Unlock()
	if wait > 0 {
		c.cfg.Logger.Info("Unleash's search rate limit is spent; waiting for its window to reset", "wait_ms", wait.Milliseconds())
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("wait for the search rate limit: %w", err)
		}
	}
	res, err := c.caller.Send(ctx, api.Call{Method: http.MethodGet, Path: unleashwire.SearchPath,
		Query: unleashwire.SearchQuery(project, true, SearchPageSize, offset), Resend: true})
	if err != nil {
		return err
	}
	if strings.TrimSpace(res.Header.Get("RateLimit-Remaining")) == "0" {
		if d, ok := resetAfter(res.Header); ok {
			c.searchMu.Lock()
			c.searchUntil = c.cfg.Now().Add(d)
			c.searchMu.Unlock()
		}
	}
	if err := json.Unmarshal(res.Body, out); err != nil {
		return fmt.Errorf("decode search page at offset %s: %w", strconv.Itoa(offset), err)
	}
	return nil
}

// ReadOptions say what ReadProjects reads beyond each project's flag list.
type ReadOptions struct {
	// Detail reports whether a listed flag's strategies are read (one GET each): nil reads
	// every flag that has strategies. A flag without strategies is never read again: the
	// list says all there is.
	Detail func(f *unleashmodel.Flag) bool
	// Segments reads the segment list even when no strategy read uses a segment (the
	// planner needs the ids of the segments Git names).
	Segments bool
}

// ReadProjects reads the live state of projects: per project, its flag list (one call),
// then one GET per flag whose strategies are needed (opts.Detail) and has some; then the
// segment list (one call) when a strategy read uses a segment or opts.Segments says so.
// Environments whose strategies were not read are left Unread.
func (c *Client) ReadProjects(ctx context.Context, projects []string, opts ReadOptions) (*unleashmodel.Live, error) {
	live := &unleashmodel.Live{}
	type detail struct {
		project, flag int
		wire          unleashwire.Feature
	}
	var details []detail
	segments := opts.Segments
	for pi, project := range projects {
		listed, err := c.ListFeatures(ctx, project)
		if err != nil {
			return nil, err
		}
		p := unleashmodel.Project{Name: project}
		for _, lf := range listed {
			f := unleashwire.FlagFromList(project, lf)
			for _, e := range lf.Environments {
				if !slices.Contains(p.Environments, e.Name) {
					p.Environments = append(p.Environments, e.Name)
				}
			}
			p.Flags = append(p.Flags, f)
		}
		slices.SortFunc(p.Flags, func(a, b unleashmodel.Flag) int { return strings.Compare(a.Name, b.Name) })
		for fi := range p.Flags {
			f := &p.Flags[fi]
			if !hasUnread(f) || (opts.Detail != nil && !opts.Detail(f)) {
				continue
			}
			wf, err := c.GetFeature(ctx, project, f.Name)
			if api.IsNotFound(err) {
				continue // archived or deleted since the list: the next read sees it
			}
			if err != nil {
				return nil, err
			}
			for _, e := range wf.Environments {
				for _, s := range e.Strategies {
					segments = segments || len(s.Segments) > 0
				}
			}
			details = append(details, detail{project: pi, flag: fi, wire: wf})
		}
		live.Projects = append(live.Projects, p)
	}
	names := map[int]string{}
	if segments {
		var err error
		if names, err = c.SegmentNames(ctx); err != nil {
			return nil, err
		}
		live.SegmentIDs = make(map[string]int, len(names))
		for id, name := range names {
			live.SegmentIDs[name] = id
		}
	}
	for _, d := range details {
		f := &live.Projects[d.project].Flags[d.flag]
		if err := unleashwire.SetStrategies(f, d.wire, names); err != nil {
			return nil, fmt.Errorf("read flag %s: %w", f.Ref(), err)
		}
	}
	return live, nil
}

func hasUnread(f *unleashmodel.Flag) bool {
	for _, e := range f.Environments {
		if e.Unread {
			return true
		}
	}
	return false
}
