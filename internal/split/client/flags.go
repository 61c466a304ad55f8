package splitclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// page is the shape of every list response.
type page struct {
	Objects    []json.RawMessage `json:"objects"`
	Offset     int               `json:"offset"`
	Limit      int               `json:"limit"`
	TotalCount *int              `json:"totalCount"`
}

// list reads every object of a paged collection: offset=0,limit,2·limit… until the
// objects read reach totalCount (or, without it, a page comes back short).
func (c *Client) list(ctx context.Context, what, path string, extra url.Values) ([]json.RawMessage, error) {
	limit := c.cfg.PageSize
	var all []json.RawMessage
	var prevFirst json.RawMessage
	for offset := 0; ; {
		q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
		for k, v := range extra {
			q[k] = v
		}
		res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: path, Query: q, Resend: true})
		if err != nil {
			return nil, fmt.Errorf("list %s, offset %d: %w", what, offset, err)
		}
		var pg page
		if err := json.Unmarshal(res.Body, &pg); err != nil {
			return nil, fmt.Errorf("list %s, offset %d: decode: %w", what, offset, err)
		}
		if len(pg.Objects) > 0 && prevFirst != nil && bytes.Equal(pg.Objects[0], prevFirst) {
			return nil, fmt.Errorf("list %s: offset %d repeats the previous page; the server does not page as expected", what, offset)
		}
		all = append(all, pg.Objects...)
		offset += len(pg.Objects)
		switch {
		case len(pg.Objects) == 0:
			return all, nil
		case pg.TotalCount != nil:
			if offset >= *pg.TotalCount {
				return all, nil
			}
		case len(pg.Objects) < limit && (pg.Limit <= 0 || len(pg.Objects) < pg.Limit):
			return all, nil
		}
		prevFirst = pg.Objects[0]
	}
}

// ListFlags returns every flag of a workspace, without definitions.
func (c *Client) ListFlags(ctx context.Context, workspace string) ([]splitmodel.Flag, error) {
	raws, err := c.list(ctx, "flags of workspace "+workspace, FlagsPath(workspace), nil)
	if err != nil {
		return nil, err
	}
	out := make([]splitmodel.Flag, 0, len(raws))
	for _, raw := range raws {
		f, err := DecodeFlag(raw, workspace)
		if err != nil {
			return nil, fmt.Errorf("list flags of workspace %s: %w", workspace, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// ListDefinitions returns every definition of a workspace in one environment, by flag
// name.
func (c *Client) ListDefinitions(ctx context.Context, workspace, env string) (map[string]splitmodel.Definition, error) {
	raws, err := c.list(ctx, "definitions of workspace "+workspace+" in environment "+env, DefinitionsPath(workspace, env), nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]splitmodel.Definition, len(raws))
	for _, raw := range raws {
		name, d, err := DecodeDefinition(raw)
		if err != nil {
			return nil, fmt.Errorf("list definitions of workspace %s in %s: %w", workspace, env, err)
		}
		out[name] = d
	}
	return out, nil
}

// ReadFlags returns every flag of a workspace with its definitions in the given
// environments: one list of flags and one list of definitions per environment (paged),
// never one call per flag. In the environments the client has seen require approvals,
// it also lists the open change requests (Flag.OpenChangeRequests).
func (c *Client) ReadFlags(ctx context.Context, workspace string, envs []string) ([]splitmodel.Flag, error) {
	flags, err := c.ListFlags(ctx, workspace)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*splitmodel.Flag, len(flags))
	for i := range flags {
		byName[flags[i].Name] = &flags[i]
	}
	for _, env := range envs {
		defs, err := c.ListDefinitions(ctx, workspace, env)
		if err != nil {
			return nil, err
		}
		for name, d := range defs {
			f, ok := byName[name]
			if !ok {
				continue // created between the two lists; the next read sees it
			}
			if f.Environments == nil {
				f.Environments = map[string]splitmodel.Definition{}
			}
			f.Environments[env] = d
		}
	}
	if err := c.attachChangeRequests(ctx, workspace, envs, flags); err != nil {
		return nil, err
	}
	return flags, nil
}

// GetFlag returns one flag without definitions; IsNotFound is true when it does not
// exist.
func (c *Client) GetFlag(ctx context.Context, workspace, name string) (splitmodel.Flag, error) {
	res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: FlagPath(workspace, name), Resend: true})
	if err != nil {
		return splitmodel.Flag{}, fmt.Errorf("get flag %s/%s: %w", workspace, name, err)
	}
	return DecodeFlag(res.Body, workspace)
}

// GetDefinition returns a flag's definition in one environment; IsNotFound is true when
// the flag is not configured there.
func (c *Client) GetDefinition(ctx context.Context, workspace, name, env string) (splitmodel.Definition, error) {
	res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: DefinitionPath(workspace, name, env), Resend: true})
	if err != nil {
		return splitmodel.Definition{}, fmt.Errorf("get definition of %s/%s in %s: %w", workspace, name, env, err)
	}
	_, d, err := DecodeDefinition(res.Body)
	return d, err
}

// ReadFlag returns one flag with its definitions in the given environments (one get for
// the flag, one per environment; environments where it is not configured are left out).
func (c *Client) ReadFlag(ctx context.Context, workspace, name string, envs []string) (splitmodel.Flag, error) {
	f, err := c.GetFlag(ctx, workspace, name)
	if err != nil {
		return splitmodel.Flag{}, err
	}
	for _, env := range envs {
		d, err := c.GetDefinition(ctx, workspace, name, env)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return splitmodel.Flag{}, err
		}
		if f.Environments == nil {
			f.Environments = map[string]splitmodel.Definition{}
		}
		f.Environments[env] = d
	}
	one := []splitmodel.Flag{f}
	if err := c.attachChangeRequests(ctx, workspace, envs, one); err != nil {
		return splitmodel.Flag{}, err
	}
	return one[0], nil
}

// CreateFlag creates f (see CreateFlagRequest) with the given tags.
func (c *Client) CreateFlag(ctx context.Context, f *splitmodel.Flag, tags []string) error {
	if _, err := c.Do(ctx, CreateFlagRequest(f, tags)); err != nil {
		return fmt.Errorf("create flag %s/%s: %w", f.Workspace, f.Name, err)
	}
	return nil
}

// CreateDefinition configures a flag in an environment.
func (c *Client) CreateDefinition(ctx context.Context, workspace, name, env string, d splitmodel.Definition) error {
	if _, err := c.Do(ctx, CreateDefinitionRequest(workspace, name, env, d)); err != nil {
		return fmt.Errorf("create definition of %s/%s in %s: %w", workspace, name, env, err)
	}
	return nil
}

// PatchDefinition applies a JSON Patch to a flag's definition in an environment and
// returns the definition the server answers with.
func (c *Client) PatchDefinition(ctx context.Context, workspace, name, env string, p jsonpatch.Patch) (splitmodel.Definition, error) {
	raw, err := c.Do(ctx, PatchDefinitionRequest(workspace, name, env, p))
	if err != nil {
		return splitmodel.Definition{}, fmt.Errorf("patch definition of %s/%s in %s: %w", workspace, name, env, err)
	}
	_, d, err := DecodeDefinition(raw)
	return d, err
}

// Kill kills a flag in one environment (every key gets the default treatment).
func (c *Client) Kill(ctx context.Context, workspace, name, env string) error {
	if _, err := c.Do(ctx, api.Request{Method: http.MethodPut, Path: KillPath(workspace, name, env), Body: json.RawMessage(`{}`)}); err != nil {
		return fmt.Errorf("kill %s/%s in %s: %w", workspace, name, env, err)
	}
	return nil
}

// Restore restores a killed flag in one environment.
func (c *Client) Restore(ctx context.Context, workspace, name, env string) error {
	if _, err := c.Do(ctx, api.Request{Method: http.MethodPut, Path: RestorePath(workspace, name, env), Body: json.RawMessage(`{}`)}); err != nil {
		return fmt.Errorf("restore %s/%s in %s: %w", workspace, name, env, err)
	}
	return nil
}

// ListEnvironments returns the names of a workspace's environments.
func (c *Client) ListEnvironments(ctx context.Context, workspace string) ([]string, error) {
	res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: APIPrefix + "/environments/ws/" + esc(workspace), Resend: true})
	if err != nil {
		return nil, fmt.Errorf("list environments of workspace %s: %w", workspace, err)
	}
	var envs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(res.Body, &envs); err != nil {
		return nil, fmt.Errorf("list environments of workspace %s: decode: %w", workspace, err)
	}
	out := make([]string, 0, len(envs))
	for _, e := range envs {
		out = append(out, e.Name)
	}
	return out, nil
}
