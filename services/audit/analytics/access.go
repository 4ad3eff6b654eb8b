package analytics

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
)

// Reasons of the access reports.
const (
	ReasonNoAllowList     = "AUDIT_NO_ALLOW_LIST"
	ReasonNoImportantApps = "AUDIT_NO_IMPORTANT_APPS"
)

// ErrNoAllowList answers a question about the allow-list when none is set.
var ErrNoAllowList = apierr.New(apierr.FailedPrecondition, ReasonNoAllowList,
	"attempts from outside the allow-list need the list: set audit.analytics.allowed_networks")

// ErrNoImportantApps answers a last-access question naming no application
// when none is set.
var ErrNoImportantApps = apierr.New(apierr.FailedPrecondition, ReasonNoImportantApps,
	"name the applications (app_ids), or set the important ones in audit.analytics.important_apps")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonNoAllowList, Code: apierr.FailedPrecondition,
		Doc: "Audit analytics: the report of attempts from outside the allow-list needs audit.analytics.allowed_networks."})
	apierr.Register(apierr.Reason{Name: ReasonNoImportantApps, Code: apierr.FailedPrecondition,
		Doc: "Audit analytics: last access to important resources needs the applications, asked or set in audit.analytics.important_apps."})
}

// The ticket component's APIs of tickets issued for and validated by a
// service (the application is the record's detail app_id).
const (
	APITicketIssue    = "ticket.issue"
	APITicketValidate = "ticket.validate"
)

// AccessAPIs are the APIs whose successful records are a person's access to
// an application: logins to it and tickets issued for or validated by its
// services.
var AccessAPIs = []string{APIAuthenticate, APIFingerBypass, APITicketIssue, APITicketValidate}

// MaxReportRecords bounds the records one access report reads, newest
// first.
const MaxReportRecords = 1_000_000

// Access is a person's latest access to an application.
type Access struct {
	Subject, Org, AppID, API, ClientIP string
	// Time of the latest access; Count of the accesses read.
	Time  time.Time
	Count int64
}

// accessApp is the application a record is an access to.
func accessApp(r *audit.Record) string {
	if r.API == APITicketIssue || r.API == APITicketValidate {
		return r.Detail["app_id"]
	}
	return r.AppID
}

// scan calls fn for the records matching f, newest first, at most
// MaxReportRecords of them; it reports whether there were more. fn
// returning false stops it.
func (a *Analytics) scan(ctx context.Context, f Filter, fn func(r *audit.Record) bool) (bool, error) {
	read := 0
	tok := ""
	for {
		recs, next, err := a.st.Records(ctx, f, MaxPageSize, tok)
		if err != nil {
			return false, err
		}
		for i := range recs {
			if !fn(&recs[i]) {
				return false, nil
			}
		}
		read += len(recs)
		if next == "" {
			return false, nil
		}
		if read >= MaxReportRecords {
			return true, nil
		}
		tok = next
	}
}

// LastAccess lists, per person and application among apps (none: the
// important applications of the settings), the latest successful access
// in r (AccessAPIs), by application then the latest first; userID ("":
// everyone) narrows it to one person. truncated: more than limit rows, or
// the range held more than MaxReportRecords accesses (the newest were
// read).
func (a *Analytics) LastAccess(ctx context.Context, scope audit.Scope, r Range, apps []string, userID string, limit int) ([]Access, bool, error) {
	settings := len(apps) == 0
	if settings {
		apps = a.important
	}
	if len(apps) == 0 {
		return nil, false, ErrNoImportantApps
	}
	if ar, ok := a.people.(AppResolver); ok {
		var err error
		if apps, err = resolveApps(ctx, ar, apps, settings); err != nil {
			return nil, false, err
		}
	}
	if strings.ContainsAny(userID, " \t\r\n") {
		return nil, false, badRequest("user_id must name a person")
	}
	f, err := scoped(scope, Filter{APIs: AccessAPIs, Results: []string{ResultSuccess}, From: r.From, To: r.To})
	if err != nil {
		return nil, false, err
	}
	if userID != "" {
		f.Subject = UserSubject(userID)
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return nil, false, err
	}
	type key struct{ subject, app string }
	last := map[key]*Access{}
	more, err := a.scan(ctx, f, func(rec *audit.Record) bool {
		app := accessApp(rec)
		if !slices.Contains(apps, app) || UserID(rec.Subject) == "" {
			return true
		}
		k := key{rec.Subject, app}
		if x, ok := last[k]; ok {
			x.Count++ // newest first: the first one read is the latest
			return true
		}
		last[k] = &Access{Subject: rec.Subject, Org: rec.Org, AppID: app, API: rec.API, ClientIP: rec.ClientIP, Time: rec.Time, Count: 1}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	out := make([]Access, 0, len(last))
	for _, x := range last {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(x, y Access) int {
		if c := cmp.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		if c := y.Time.Compare(x.Time); c != 0 {
			return c
		}
		return cmp.Compare(x.Subject, y.Subject)
	})
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, more, nil
}

// inNetworks reports whether ip is in one of nets.
func inNetworks(nets []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// OutsideAllowList lists the stored login attempts (any result) in r from
// addresses outside the allowed networks of the settings, newest first.
// truncated: more than limit, or the range held more than
// MaxReportRecords login attempts (the newest were read).
func (a *Analytics) OutsideAllowList(ctx context.Context, scope audit.Scope, r Range, limit int) ([]audit.Record, bool, error) {
	if len(a.allowed) == 0 {
		return nil, false, ErrNoAllowList
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, From: r.From, To: r.To})
	if err != nil {
		return nil, false, err
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return nil, false, err
	}
	var out []audit.Record
	full := false
	more, err := a.scan(ctx, f, func(rec *audit.Record) bool {
		ip, err := netip.ParseAddr(rec.ClientIP)
		if err != nil || inNetworks(a.allowed, ip) {
			return true
		}
		if len(out) == limit {
			full = true
			return false
		}
		out = append(out, *rec)
		return true
	})
	if err != nil {
		return nil, false, err
	}
	return out, more || full, nil
}

// AppResolver is what a PeopleSource may also answer: the App_IDs of
// applications named by App_ID or application code, as the calling
// administrator may read them. Known maps each name given to its App_ID,
// leaving out the names no application has; ok is false when the
// applications cannot be listed now (identity down, or the caller may not
// read them): the names are then taken as App_IDs.
type AppResolver interface {
	ResolveApps(ctx context.Context, names []string) (known map[string]string, ok bool)
}

// resolveApps turns the applications named (App_IDs or codes) into
// App_IDs; a name no application has is refused (it would match nothing
// and answer "nobody accessed it"), naming the setting when it comes from
// there.
func resolveApps(ctx context.Context, ar AppResolver, names []string, settings bool) ([]string, error) {
	known, ok := ar.ResolveApps(ctx, names)
	if !ok {
		return names, nil
	}
	out := make([]string, 0, len(names))
	var unknown []string
	for _, n := range names {
		id, found := known[n]
		if !found {
			unknown = append(unknown, n)
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(unknown) > 0 {
		list := strings.Join(unknown, ", ")
		if settings {
			return nil, apierr.New(apierr.FailedPrecondition, ReasonNoImportantApps,
				"audit.analytics.important_apps names no application by "+list+" (give App_IDs or application codes)")
		}
		return nil, badRequest("no application has the App_ID or code " + list +
			" (who may not read the applications names them by App_ID)")
	}
	return out, nil
}
