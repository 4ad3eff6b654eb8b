package applier

import (
	"context"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
)

// watchSource keeps the source of peer link l (events.SourceWatch): a
// source silent for the applier's SourceRetry is restarted (nats-server's
// own retry backs off to minutes after a cut; counted in
// uias_sync_source_restarts_total), and a source re-pointed at another
// stream or domain is put back (counted in uias_sync_source_repointed_total),
// until ctx ends.
func (a *Applier) watchSource(ctx context.Context, l Link) {
	if !l.Peer || a.o.SourceRetry <= 0 {
		return
	}
	a.sourceWatch(l).Run(ctx)
}

func (a *Applier) sourceWatch(l Link) events.SourceWatch {
	return events.SourceWatch{
		JS: a.js, Config: StreamConfig(l), Retry: a.o.SourceRetry, Log: a.o.Logger.With(zap.String("link", l.Name)),
		Restarted: func() { a.sourceRestarts.WithLabelValues(l.Name).Inc() },
		Repointed: func([]string) { a.sourceRepointed.WithLabelValues(l.Name).Inc() },
	}
}
