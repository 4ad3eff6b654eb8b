package component

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/module"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
	"github.com/uias/uias/services/audit/server"
	"github.com/uias/uias/services/audit/sqlstore"
)

// AnalyticsConfig is the audit.analytics section: login analytics.
type AnalyticsConfig struct {
	// OnlineWindow: a successful login counts as online this long when the
	// ticket component's sessions cannot be asked, or the question asks
	// the audit log (30m; 1m to 24h).
	OnlineWindow time.Duration `yaml:"online_window"`
	// GeoIPDB is the MaxMind-format (.mmdb) city database that places
	// client addresses for impossible travel ("": impossible travel is
	// off). A database that cannot be opened is logged at start and
	// travel questions are refused; the rest of the component runs.
	GeoIPDB string `yaml:"geoip_db"`
	// Sites place the organisation's own networks, which no database
	// knows (an intranet's private addresses): "NETWORK LAT LON NAME",
	// e.g. "10.20.0.0/16 22.54 114.06 Shenzhen MSA". An address is at the
	// site of the most specific network holding it, else where GeoIPDB
	// says; either alone turns impossible travel on.
	Sites []string `yaml:"sites"`
	// MaxTravelKMH is the fastest plausible travel between two logins
	// (900 km/h); MinTravelKM ignores shorter distances (100 km).
	MaxTravelKMH int `yaml:"max_travel_kmh"`
	MinTravelKM  int `yaml:"min_travel_km"`
	// Alerts raises alerts in real time from the AUDIT stream (true):
	// impossible travel (with GeoIPDB), bursts of lockouts, and logins from
	// outside AllowedNetworks. They are published on NATS
	// (uias.alerts.audit.<kind>) and, with AlertWebhookURL, posted there
	// signed with AlertWebhookSecret (UIAS_AUDIT_ALERT_WEBHOOK_SECRET,
	// environment only), tried AlertWebhookAttempts times (5).
	Alerts bool `yaml:"alerts"`
	// AllowedNetworks are the networks (CIDR or single addresses) logins
	// may come from; empty: no address alerts.
	AllowedNetworks []string `yaml:"allowed_networks"`
	// LockoutBurst lockouts within LockoutWindow raise an alert (5 in 5m;
	// 0: none).
	LockoutBurst  int           `yaml:"lockout_burst"`
	LockoutWindow time.Duration `yaml:"lockout_window"`
	// AdminFailureBurst failed administrator logins of one account within
	// LockoutWindow raise an alert (3; 0: none).
	AdminFailureBurst int `yaml:"admin_failure_burst"`
	// CallerRefusalBurst calls refused as one application within
	// LockoutWindow raise an alert (20; 0: none).
	CallerRefusalBurst   int    `yaml:"caller_refusal_burst"`
	AlertWebhookURL      string `yaml:"alert_webhook_url"`
	AlertWebhookSecret   string `yaml:"-"`
	AlertWebhookAttempts int    `yaml:"alert_webhook_attempts"`
	// ImportantApps are the applications (App_IDs or application codes) whose last access per
	// person the last-access report lists when the question names none
	// (empty: the question must name them).
	ImportantApps []string `yaml:"important_apps"`
}

func analyticsDefaults() AnalyticsConfig {
	return AnalyticsConfig{OnlineWindow: 30 * time.Minute, MaxTravelKMH: 900, MinTravelKM: 100, Alerts: true, LockoutBurst: 5,
		LockoutWindow: 5 * time.Minute, AlertWebhookAttempts: 5, AdminFailureBurst: 3,
		CallerRefusalBurst: 20}
}

func (c *AnalyticsConfig) bind(b *config.Binder) {
	b.Duration(&c.OnlineWindow, "UIAS_AUDIT_ONLINE_WINDOW", "", "")
	b.String(&c.GeoIPDB, "UIAS_AUDIT_GEOIP_DB", "", "")
	b.List(&c.Sites, "UIAS_AUDIT_SITES", "", "")
	b.Int(&c.MaxTravelKMH, "UIAS_AUDIT_MAX_TRAVEL_KMH", "", "")
	b.Int(&c.MinTravelKM, "UIAS_AUDIT_MIN_TRAVEL_KM", "", "")
	b.Bool(&c.Alerts, "UIAS_AUDIT_ALERTS", "", "")
	b.List(&c.AllowedNetworks, "UIAS_AUDIT_ALLOWED_NETWORKS", "", "")
	b.Int(&c.LockoutBurst, "UIAS_AUDIT_LOCKOUT_BURST", "", "")
	b.Duration(&c.LockoutWindow, "UIAS_AUDIT_LOCKOUT_WINDOW", "", "")
	b.Int(&c.AdminFailureBurst, "UIAS_AUDIT_ADMIN_FAILURE_BURST", "", "")
	b.Int(&c.CallerRefusalBurst, "UIAS_AUDIT_CALLER_REFUSAL_BURST", "", "")
	b.String(&c.AlertWebhookURL, "UIAS_AUDIT_ALERT_WEBHOOK_URL", "", "")
	b.Secret(&c.AlertWebhookSecret, "UIAS_AUDIT_ALERT_WEBHOOK_SECRET")
	b.Int(&c.AlertWebhookAttempts, "UIAS_AUDIT_ALERT_WEBHOOK_ATTEMPTS", "", "")
	b.List(&c.ImportantApps, "UIAS_AUDIT_IMPORTANT_APPS", "", "")
}

// allowedNetworks parses AllowedNetworks (a single address is its own
// network).
func (c *AnalyticsConfig) allowedNetworks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.AllowedNetworks {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (CIDR) nor an address", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sites returns the Geo of Sites (nil: none).
func (c *AnalyticsConfig) sites() (*analytics.Sites, error) {
	var sites []analytics.Site
	for _, s := range c.Sites {
		if strings.TrimSpace(s) == "" {
			continue
		}
		site, err := analytics.ParseSite(s)
		if err != nil {
			return nil, err
		}
		sites = append(sites, site)
	}
	if len(sites) == 0 {
		return nil, nil
	}
	return analytics.NewSites(sites)
}

func (c *AnalyticsConfig) validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + ".analytics." + field, Msg: fmt.Sprintf(format, a...)})
	}
	if c.OnlineWindow < time.Minute || c.OnlineWindow > analytics.MaxOnlineWindow {
		bad("online_window", "must be between 1m and 24h, got %s", c.OnlineWindow)
	}
	if c.MaxTravelKMH < 1 || c.MaxTravelKMH > 100000 {
		bad("max_travel_kmh", "must be between 1 and 100000, got %d", c.MaxTravelKMH)
	}
	if c.MinTravelKM < 0 || c.MinTravelKM > 20000 {
		bad("min_travel_km", "must be between 0 and 20000, got %d", c.MinTravelKM)
	}
	if _, err := c.allowedNetworks(); err != nil {
		bad("allowed_networks", "%v", err)
	}
	if _, err := c.sites(); err != nil {
		bad("sites", "%v", err)
	}
	if c.LockoutBurst < 0 || c.LockoutBurst > 100000 {
		bad("lockout_burst", "must be between 0 (no alert) and 100000, got %d", c.LockoutBurst)
	}
	if c.AdminFailureBurst < 0 || c.AdminFailureBurst > 100000 {
		bad("admin_failure_burst", "must be between 0 (no alert) and 100000, got %d", c.AdminFailureBurst)
	}
	if c.CallerRefusalBurst < 0 || c.CallerRefusalBurst > 100000 {
		bad("caller_refusal_burst", "must be between 0 (no alert) and 100000, got %d", c.CallerRefusalBurst)
	}
	if c.LockoutWindow < time.Second || c.LockoutWindow > 24*time.Hour {
		bad("lockout_window", "must be between 1s and 24h, got %s", c.LockoutWindow)
	}
	if c.AlertWebhookURL != "" {
		if u, err := url.Parse(c.AlertWebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("alert_webhook_url", "must be an http(s) URL, got %q", c.AlertWebhookURL)
		}
		if len(c.AlertWebhookSecret) < 16 {
			bad("alert_webhook_url", "needs a signing secret of at least 16 bytes in UIAS_AUDIT_ALERT_WEBHOOK_SECRET")
		}
	}
	if c.AlertWebhookAttempts < 1 || c.AlertWebhookAttempts > 100 {
		bad("alert_webhook_attempts", "must be between 1 and 100, got %d", c.AlertWebhookAttempts)
	}
	for _, app := range c.ImportantApps {
		if strings.TrimSpace(app) == "" || len(app) > 128 {
			bad("important_apps", "must be App_IDs or application codes (1-128 characters), got %q", app)
		}
	}
	if len(c.ImportantApps) > 100 {
		bad("important_apps", "at most 100 applications, got %d", len(c.ImportantApps))
	}
	return errors.Join(errs...)
}

// analyticsREST registers the analytics routes (GET /v1/audit/analytics/...).
func analyticsREST(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	return auditv1.RegisterAuditAnalyticsServiceHandlerClient(ctx, mux, auditv1.NewAuditAnalyticsServiceClient(conn))
}

// startAnalytics opens the geolocation database and returns the analytics
// service over the log's store.
func startAnalytics(env *module.Env, cfg *Config, st *sqlstore.Store, exp audit.Exporter) (*server.AnalyticsServer, *analytics.Notifier, error) {
	ac := cfg.Analytics
	allowed, err := ac.allowedNetworks()
	if err != nil {
		return nil, nil, err
	}
	o := analytics.Options{Travel: analytics.TravelRules{MaxSpeedKMH: float64(ac.MaxTravelKMH), MinDistanceKM: float64(ac.MinTravelKM)},
		ImportantApps: ac.ImportantApps, Allowed: allowed}
	var geos analytics.Geos
	sites, err := ac.sites()
	if err != nil {
		return nil, nil, err
	}
	if sites != nil {
		geos = append(geos, sites)
	}
	if ac.GeoIPDB != "" {
		db, err := analytics.OpenMMDB(ac.GeoIPDB)
		if err != nil {
			env.Log.Error("the IP geolocation database (audit.analytics.geoip_db) cannot be opened: impossible travel places "+
				"only the addresses of audit.analytics.sites (off without them); the other analytics and the audit log run", zap.Error(err))
		} else {
			geos = append(geos, db)
			env.OnStop(func(context.Context) error { return db.Close() })
		}
	}
	switch len(geos) {
	case 1:
		o.Geo = geos[0]
	case 2:
		o.Geo = geos
	}
	if tc, err := env.Client("ticket"); err == nil {
		o.Sessions = newTicketSessions(tc)
	} else {
		env.Log.Info("online now comes from the audit log's logins: the ticket component cannot be reached", zap.Error(err))
	}
	if ic, err := env.Client("identity"); err == nil {
		o.People = newIdentityPeople(ic, centre.FromConfig(env.Config), cfg.Peers)
	}
	for _, pe := range cfg.Peers {
		o.PeerOrigins = append(o.PeerOrigins, pe.Origin)
	}
	o.LocalOrigin = cfg.Origin
	a := analytics.New(st, o)
	var n *analytics.Notifier
	if ac.Alerts {
		if n, err = startAlerts(env, ac, o, a); err != nil {
			return nil, nil, err
		}
	}
	return server.NewAnalytics(a, ac.OnlineWindow, exp), n, nil
}

// startAlerts starts the alert consumer and the webhook sender, and
// returns the sender (other alerts go through it too).
func startAlerts(env *module.Env, ac AnalyticsConfig, o analytics.Options, a *analytics.Analytics) (*analytics.Notifier, error) {
	nc, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	allowed, err := ac.allowedNetworks()
	if err != nil {
		return nil, err
	}
	log := env.Log.Named("alerts")
	n := analytics.NewNotifier(nc.Publish, analytics.WebhookOptions{URL: ac.AlertWebhookURL, Secret: []byte(ac.AlertWebhookSecret),
		Attempts: ac.AlertWebhookAttempts}, log, env.Metrics)
	det := analytics.NewDetector(analytics.DetectorOptions{Geo: o.Geo, Travel: o.Travel, Allowed: allowed,
		LockoutBurst: ac.LockoutBurst, LockoutWindow: ac.LockoutWindow, AdminFailureBurst: ac.AdminFailureBurst,
		CallerRefusalBurst: ac.CallerRefusalBurst, Previous: a.PreviousLogin})
	al := &alerter{js: js, det: det, n: n, log: log, since: time.Now(), giveWay: env.GiveWay()}
	env.Go(n.Run)
	env.Go(al.run)
	return n, nil
}
