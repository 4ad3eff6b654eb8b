package component

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
)

// Suspended applications. A suspended application's CAS services take no
// tickets (as a disabled client in Keycloak, a disabled service in CAS):
// logins to them are refused and tickets issued before do not validate.
// Every instance keeps the set of suspended App_IDs: read from identity's
// ViewService for the applications that have services when the component
// starts and every appStatusRefresh, and changed at once by identity's
// app.updated events (each instance hears them all). An application
// identity no longer knows was deleted while no ticket instance heard its
// app.deleted (one instance of the queue group handles each; none may have
// been running): its services take no tickets at once, and once identity
// has not known it for unknownGrace the refresh deletes them (audit cause
// APP_UNKNOWN). Registering a service requires an application identity
// knows (ServiceRegistry's CheckApp), so an unknown one is a deleted one,
// also at a centre holding the replica of another centre's application;
// the grace, and a refresh that finds every one of several applications
// unknown deleting nothing, keep an identity briefly answering from a
// wrong or restored database from costing the registry.

// appStatusRefresh is how often the set is read again from identity (it
// covers events missed while an instance was not connected).
const appStatusRefresh = time.Minute

// appStatusFirstRetry is how soon a first read that failed is tried again.
const appStatusFirstRetry = 2 * time.Second

// appStatusFirstWait bounds the first read at the component's start.
const appStatusFirstWait = 5 * time.Second

// identity's AppStatus values (services/identity AppSuspended).
const appSuspended = 2

// unknownGrace is how long identity must not know an application before
// its services are deleted.
const unknownGrace = 10 * time.Minute

type appStatus struct {
	mu        sync.RWMutex
	suspended map[string]bool
	// periods are the access periods of the applications that have one
	// (access_from, access_until; zero: open): outside it an application
	// is as suspended (its services take no tickets; the registry rereads
	// every registry_refresh, so a period's end applies that late).
	periods map[string]accessPeriod
	// levels are the applications' own minimum levels, those above 1
	// (identity's min_auth_level): their services are held to them
	// (ticket.Registry.SetAppLevels).
	levels map[string]int
	// read: the levels have been read from identity once since the start
	// (until then every application's level is unknown and its services
	// issue nothing: review sec26 M3).
	read bool
	reg  *ticket.Registry
	// unknownSince: when the refresh first found identity not knowing
	// the application (only the refresh's goroutine uses it).
	unknownSince map[string]time.Time
	now          func() time.Time
}

// accessPeriod is an application's access_from .. access_until.
type accessPeriod struct{ from, until time.Time }

func (p accessPeriod) outside(now time.Time) bool {
	return !p.from.IsZero() && now.Before(p.from) || !p.until.IsZero() && !now.Before(p.until)
}

func newAppStatus(reg *ticket.Registry) *appStatus {
	a := &appStatus{suspended: map[string]bool{}, periods: map[string]accessPeriod{}, levels: map[string]int{}, reg: reg,
		unknownSince: map[string]time.Time{}, now: time.Now}
	reg.SetSuspended(a.isSuspended)
	reg.SetAppLevels(a.level)
	return a
}

// level is appID's own minimum level, ticket.AppLevelUnknown until the
// levels were read from identity once.
func (a *appStatus) level(appID string) int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.read {
		return ticket.AppLevelUnknown
	}
	return a.levels[appID]
}

// markRead records that the levels were read from identity: the services
// are held to them from now on.
func (a *appStatus) markRead() {
	a.mu.Lock()
	was := a.read
	a.read = true
	a.mu.Unlock()
	if !was {
		a.reg.Invalidate()
	}
}

// setLevel records appID's own minimum level (nil: not said, kept).
func (a *appStatus) setLevel(appID string, level *int) {
	if level == nil {
		return
	}
	l := *level
	if l <= 1 {
		l = 0 // any: not kept
	}
	a.mu.Lock()
	changed := a.levels[appID] != l
	if l == 0 {
		delete(a.levels, appID)
	} else {
		a.levels[appID] = l
	}
	a.mu.Unlock()
	if changed {
		a.reg.Invalidate()
	}
}

func (a *appStatus) isSuspended(appID string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if p, ok := a.periods[appID]; ok && p.outside(a.now()) {
		return true
	}
	return a.suspended[appID]
}

// setPeriod records appID's access period.
func (a *appStatus) setPeriod(appID string, p accessPeriod) {
	a.mu.Lock()
	changed := a.periods[appID] != p
	if p == (accessPeriod{}) {
		delete(a.periods, appID)
	} else {
		a.periods[appID] = p
	}
	a.mu.Unlock()
	if changed {
		a.reg.Invalidate()
	}
}

// appData is what appStatus reads of an application's view (identity's
// appView): its status and access period.
type appData struct {
	Status      *int       `json:"status"`
	AccessFrom  *time.Time `json:"access_from"`
	AccessUntil *time.Time `json:"access_until"`
	// MinAuthLevel: the application's own minimum level (absent from an
	// identity of an earlier version).
	MinAuthLevel *int `json:"min_auth_level"`
}

func (d appData) period() accessPeriod {
	var p accessPeriod
	if d.AccessFrom != nil {
		p.from = *d.AccessFrom
	}
	if d.AccessUntil != nil {
		p.until = *d.AccessUntil
	}
	return p
}

// set records appID's status; the registry is reread when it changed.
func (a *appStatus) set(appID string, suspended bool) {
	a.mu.Lock()
	changed := a.suspended[appID] != suspended
	if suspended {
		a.suspended[appID] = true
	} else {
		delete(a.suspended, appID)
	}
	a.mu.Unlock()
	if changed {
		a.reg.Invalidate()
	}
}

// onChange applies one identity CHANGES event of an application.
func (a *appStatus) onChange(m *nats.Msg) {
	var ev struct {
		Entity string  `json:"entity"`
		Op     string  `json:"op"`
		ID     string  `json:"id"`
		Data   appData `json:"data"`
	}
	if json.Unmarshal(m.Data, &ev) != nil || ev.Entity != "app" || ev.ID == "" {
		return
	}
	switch {
	case strings.HasSuffix(m.Subject, ".deleted"):
		a.set(ev.ID, true) // and its services go (deleteAppServices)
	case ev.Data.Status != nil:
		a.setPeriod(ev.ID, ev.Data.period())
		a.setLevel(ev.ID, ev.Data.MinAuthLevel)
		a.set(ev.ID, *ev.Data.Status == appSuspended)
	}
}

// servicesLister lists the registered services and deletes an
// application's (ticket.Service).
type servicesLister interface {
	ListRegisteredServices(ctx context.Context, appID string) ([]*ticket.RegisteredService, error)
	DeleteAppServices(ctx context.Context, appID, cause string) (int, error)
}

// refresh reads the status of the applications that have services, and
// deletes the services of those identity no longer knows.
func (a *appStatus) refresh(ctx context.Context, svc servicesLister, views identityv1.ViewServiceClient, log *zap.Logger) error {
	rs, err := svc.ListRegisteredServices(ctx, "")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range rs {
		if r.AppID != "" && !seen[r.AppID] {
			seen[r.AppID] = true
			ids = append(ids, r.AppID)
		}
	}
	for id := range a.unknownSince {
		if !seen[id] { // its services are gone
			delete(a.unknownSince, id)
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		res, err := views.GetViews(ctx, &identityv1.GetViewsRequest{Entity: "app", Ids: ids[:n]})
		if err != nil {
			return err
		}
		known := map[string]bool{}
		for _, v := range res.GetViews() {
			known[v.GetId()] = true
		}
		// Several applications and none known: identity answers from a
		// database that is not this deployment's (or not yet): nothing is
		// deleted on its word.
		suspicious := n >= 3 && len(known) == 0
		if suspicious {
			log.Warn("identity knows none of the applications with CAS services; their services take no tickets, and none is deleted",
				zap.Int("applications", n))
		}
		now := a.now()
		for _, id := range ids[:n] {
			if known[id] {
				delete(a.unknownSince, id)
				continue
			}
			a.set(id, true) // deleted in identity: no tickets for its services
			since, ok := a.unknownSince[id]
			if !ok {
				a.unknownSince[id] = now
				continue
			}
			if suspicious || now.Sub(since) < unknownGrace {
				continue
			}
			if gone, err := svc.DeleteAppServices(ctx, id, ticket.CauseAppUnknown); err != nil {
				log.Warn("services of an application identity no longer knows not all removed; trying again at the next refresh",
					zap.String("app_id", id), zap.Error(err))
			} else {
				delete(a.unknownSince, id)
				if gone > 0 {
					log.Info("removed the services of an application identity no longer knows (deleted while no ticket instance heard it)",
						zap.String("app_id", id), zap.Int("services", gone))
				}
			}
		}
		for _, v := range res.GetViews() {
			var d appData
			if json.Unmarshal(v.GetData(), &d) == nil && d.Status != nil {
				a.setPeriod(v.GetId(), d.period())
				a.setLevel(v.GetId(), d.MinAuthLevel)
				a.set(v.GetId(), *d.Status == appSuspended)
			}
		}
		ids = ids[n:]
	}
	a.markRead()
	return nil
}

// failureLog decides which failed reads are logged: the first of a run
// of failures, then one a minute (a read is retried every 2 s until the
// first succeeds: an identity outage logged 30 warnings a minute per
// ticket instance), and the read that ends the run.
type failureLog struct {
	failed     int       // failures since the last success
	lastLogged time.Time // when a failure was last logged
}

// failure counts one failed read at now and reports whether to log it.
func (f *failureLog) failure(now time.Time) bool {
	f.failed++
	if f.failed == 1 || now.Sub(f.lastLogged) >= time.Minute {
		f.lastLogged = now
		return true
	}
	return false
}

// success ends a run of failures and returns its length (0: none).
func (f *failureLog) success() int {
	n := f.failed
	f.failed = 0
	return n
}

// run refreshes the set now and every appStatusRefresh.
func (a *appStatus) run(ctx context.Context, svc servicesLister, views identityv1.ViewServiceClient, log *zap.Logger) {
	var fails failureLog
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := a.refresh(rctx, svc, views, log); err != nil && ctx.Err() == nil {
			if fails.failure(a.now()) {
				log.Warn("the status of applications with CAS services not read from identity; trying again (logged once a minute while it fails)",
					zap.Int("failed_reads", fails.failed), zap.Error(err))
			}
		} else if err == nil {
			if n := fails.success(); n > 0 {
				log.Info("the status of applications with CAS services read from identity again", zap.Int("failed_reads", n))
			}
		}
		cancel()
		wait := appStatusRefresh
		a.mu.RLock()
		if !a.read {
			wait = appStatusFirstRetry // services of applications issue nothing yet
		}
		a.mu.RUnlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
