package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// RevisionTag adds the revision of the sync in flight to the log lines of components
// built before the daemon and shared across syncs, such as the API client, whose logger
// cannot carry a fixed revision. Give such a component Wrap(logger) and the daemon the
// tag (Config.RevisionTag). The zero value is ready to use.
type RevisionTag struct {
	rev atomic.Pointer[string]
}

// Wrap returns a logger that adds "revision" to every line logged while a sync runs.
func (t *RevisionTag) Wrap(l *slog.Logger) *slog.Logger {
	return slog.New(&revisionHandler{h: l.Handler(), tag: t})
}

func (t *RevisionTag) set(rev string) {
	if t == nil {
		return
	}
	if rev == "" {
		t.rev.Store(nil)
		return
	}
	t.rev.Store(&rev)
}

type revisionHandler struct {
	h   slog.Handler
	tag *RevisionTag
}

func (h *revisionHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, l)
}

func (h *revisionHandler) Handle(ctx context.Context, r slog.Record) error {
	if rev := h.tag.rev.Load(); rev != nil {
		r = r.Clone()
		r.AddAttrs(slog.String("revision", *rev))
	}
	return h.h.Handle(ctx, r)
}

func (h *revisionHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &revisionHandler{h: h.h.WithAttrs(attrs), tag: h.tag}
}

func (h *revisionHandler) WithGroup(name string) slog.Handler {
	return &revisionHandler{h: h.h.WithGroup(name), tag: h.tag}
}
