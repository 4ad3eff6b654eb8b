// Package component registers the audit service as a UIAS module: its
// config section, its needs (SQL, NATS, identity's client) and how it
// starts: the ingest consumer of the AUDIT stream, the checkpoint signer
// and the gRPC services.
package component

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/proto/gen/openapi"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
	"github.com/uias/uias/services/audit/ingest"
	"github.com/uias/uias/services/audit/server"
	"github.com/uias/uias/services/audit/sqlstore"
)

// Name is the audit component's name (target, config key, etcd name).
const Name = "audit"

// CheckpointSubject is the NATS subject on which every new checkpoint (the
// signed note) is published, for witnesses such as another centre.
const CheckpointSubject = "uias.checkpoints.audit"

// Handle is what a running audit component exposes to the process owner
// (tests and benchmarks): module.Process.Value("audit").
type Handle struct {
	Log      *audit.Log
	Store    *sqlstore.Store
	DB       *store.DB
	Ingester *ingest.Ingester
}

// The REST routes (audit.proto's google.api.http) that pass over the whole
// log: a verification, an archiving pass (and its status, a cheap read
// under the same prefix).
const (
	VerifyPath   = "/v1/audit/verify"
	ArchivesPath = "/v1/audit/archives"
)

// Module is the audit component's registration.
func Module() module.Module {
	return module.Module{
		Name:   Name,
		Config: func() config.Section { return Defaults() },
		SQL:    true,
		NATS:   true,
		Uses:   []string{"identity"},
		Calls:  []string{"authz", "ticket"},
		REST:   rest,
		// the downloads of exports run as long as the file takes; a
		// verification or an archiving pass as long as the log takes
		// (10 M records: about half a minute), past the edge's 25 s
		FileRoutes: []string{ExportPath, strings.TrimSuffix(AnalyticsExportPath, "{report}"), VerifyPath, ArchivesPath},
		OpenAPI:    auditOpenAPI,
		OpenAPISecurity: map[string][]string{"AuditLogService": module.AdminCredentials, "AuditQueryService": module.AdminCredentials,
			"AuditReportService":    module.AdminCredentials,
			"AuditAnalyticsService": module.AdminCredentials},
		Init: start,
	}
}

// auditOpenAPI is one document for audit.proto, reports.proto and the
// export download (which has no google.api.http mapping to generate it
// from).
var auditOpenAPI = func() []byte {
	b, err := module.MergeOpenAPI(openapi.Audit, openapi.AuditReports, openapi.AuditAnalytics, exportOpenAPI)
	if err != nil {
		panic("audit openapi: " + err.Error()) // generated and embedded: cannot happen
	}
	return b
}()

//go:embed export.openapi.json
var exportOpenAPI []byte

func rest(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := auditv1.RegisterAuditLogServiceHandlerClient(ctx, mux, auditv1.NewAuditLogServiceClient(conn)); err != nil {
		return err
	}
	if err := auditv1.RegisterAuditQueryServiceHandlerClient(ctx, mux, auditv1.NewAuditQueryServiceClient(conn)); err != nil {
		return err
	}
	if err := auditv1.RegisterAuditReportServiceHandlerClient(ctx, mux, auditv1.NewAuditReportServiceClient(conn)); err != nil {
		return err
	}
	if err := analyticsREST(ctx, mux, conn); err != nil {
		return err
	}
	if err := registerAnalyticsExport(mux, conn); err != nil {
		return err
	}
	// The file of an export (GET /v1/audit/export).
	return registerExport(mux, conn)
}

func start(ctx context.Context, env *module.Env) (*module.Component, error) {
	cfg := env.Section().(*Config)
	log := env.Log
	nc, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	db, err := env.MigratedSQL(ctx, sqlstore.Migrate)
	if err != nil {
		return nil, err
	}
	st := sqlstore.New(db)
	st.SetLocalOrigin(cfg.Origin)
	signer, err := openSigner(ctx, cfg, cfg.KeyFileIn(env.Config), st, log)
	if err != nil {
		return nil, err
	}
	wit, err := openWitness(ctx, cfg.WitnessFileIn(env.Config), signer, st, log)
	if err != nil {
		return nil, err
	}
	l := audit.NewLog(st, signer, audit.LogOptions{
		Policy: audit.Policy{Every: int64(cfg.CheckpointEvery), Interval: cfg.CheckpointInterval},
		OnCheckpoint: func(c audit.Checkpoint) {
			if err := nc.Publish(CheckpointSubject, c.Note); err != nil {
				log.Warn("checkpoint not published", zap.Int64("size", c.Size), zap.Error(err))
			}
			advanceWitness(wit, st, c, log)
		},
		Witness: wit,
	})
	exp := audit.Exporter{PDFFont: cfg.PDFFont, PDFLatinFont: cfg.PDFLatinFont}
	idc, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	names := newIdentityNames(idc)
	exp.Names = names
	subtrees := newIdentityOrgs(idc).Subtrees
	exportLog := func(ctx context.Context, rec audit.Record) error {
		_, err := l.Append(ctx, []audit.Record{rec})
		return err
	}
	rep, err := cfg.Reports.reporter(st, exp)
	if err != nil {
		return nil, err
	}
	mailer, err := cfg.Reports.Mail.mailer(rep)
	if err != nil {
		return nil, err
	}
	in := ingest.New(js, l, ingest.Options{Batch: cfg.Batch, MaxWait: cfg.BatchWait, StreamMaxAge: cfg.StreamMaxAge,
		Logger: log.Named("ingest"), Metrics: env.Metrics, GiveWay: env.GiveWay()})
	env.Go(func(ctx context.Context) { _ = in.Run(ctx) })
	shared, received := peerMetrics(env.Metrics)
	var peerKeys []audit.PeerKeys
	for _, pe := range cfg.Peers {
		peerKeys = append(peerKeys, audit.PeerKeys{Origin: pe.Origin, VerifierKeys: pe.VerifierKeys})
	}
	origins, err := audit.NewOrigins(cfg.Origin, st, peerKeys)
	if err != nil {
		return nil, err
	}
	if cfg.Share {
		sh := &sharer{js: js, st: st, origin: cfg.Origin, log: log.Named("share"), every: time.Second, published: shared}
		env.Go(sh.run)
	}
	problems, restarts := peerProblemMetrics(env.Metrics), peerSourceMetrics(env.Metrics)
	for _, pe := range cfg.Peers {
		rc := &receiver{js: js, st: st, peer: pe, batch: min(cfg.Batch, 1000), log: log.Named("peers"), sourceRetry: 5 * time.Second,
			received: received, problems: problems, restarts: restarts, audit: func(ctx context.Context, rec audit.Record) error {
				_, err := l.Append(ctx, []audit.Record{rec})
				return err
			}}
		env.Go(rc.run)
	}
	if wit != nil {
		wm := newWitnessMetrics(env.Metrics)
		env.Go(func(ctx context.Context) {
			runWitness(ctx, wit, st, max(cfg.CheckpointInterval, 10*time.Second), log, wm)
		})
	}
	archiveDir := ""
	if cfg.ArchiveDir != "" || env.Config.DataDir != "" {
		archiveDir = cfg.ArchiveDirIn(env.Config)
	}
	if cfg.Retention > 0 {
		ret := audit.Retention{Keep: cfg.Retention, Dir: archiveDir}
		rm := newRetentionMetrics(env.Metrics)
		env.Go(func(ctx context.Context) {
			runRetention(ctx, l, origins, ret, cfg.RetentionCheck, log.Named("retention"), rm)
		})
	}

	if rep != nil {
		rpm := newReportMetrics(env.Metrics)
		env.Go(func(ctx context.Context) { runReports(ctx, rep, mailer, time.Minute, log.Named("reports"), rpm) })
	}
	admins, err := adminauth.FromEnv(env)
	if err != nil {
		return nil, err
	}
	an, alerts, err := startAnalytics(env, cfg, st, exp)
	if err != nil {
		return nil, err
	}
	return &module.Component{
		Register: func(g grpc.ServiceRegistrar) {
			server.New(l).WithOrigins(origins).WithArchives(server.ArchiveOptions{Dir: archiveDir, Reminder: cfg.BackupReminder, Checker: admins,
				MinRemovalAge: cfg.MinRemovalAge, OnRemoved: removalAlert(alerts, log)}).Register(g)
			server.NewQuery(st).WithNames(names).WithOrgs(subtrees).Register(g)
			server.NewReports(st, exp).WithOrgs(subtrees).WithExportLog(exportLog).Register(g)
			an.WithExportLog(exportLog).WithNames(names).WithOrigins(origins).Register(g)
		},
		Auth:  server.CallerAuth(admins, subtrees),
		Ready: db.PingContext,
		Value: &Handle{Log: l, Store: st, DB: db, Ingester: in},
	}, nil
}

// openSigner loads the key ring and derives the checkpoint keys. A new
// ring file is made only for a log without checkpoints; the ring must
// verify the latest checkpoint, else the start stops (a new ring would sign
// checkpoints nobody can link to the old ones).
func openSigner(ctx context.Context, cfg *Config, keyFile string, st *sqlstore.Store, log *zap.Logger) (*audit.Signer, error) {
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit key ring: read the log: %w", err)
	}
	ring, err := crypto.LoadRing(crypto.RingSource{Env: cfg.KeyRing, File: keyFile, AllowOpenFile: cfg.KeyFileAllowOpenMode})
	switch {
	case errors.Is(err, crypto.ErrNoRing) && latest != nil:
		return nil, fmt.Errorf("audit key ring: %w, but the audit log has signed checkpoints: restore the key ring it was set up with "+
			"(the backup of %s, or UIAS_KEYRING)", err, keyFile)
	case errors.Is(err, crypto.ErrNoRing):
		if ring, err = crypto.NewRingFile(keyFile); err != nil {
			return nil, fmt.Errorf("audit key ring: %w", err)
		}
		log.Warn("created a new key ring for a new audit log; back it up, or better keep it in a Secret (docs/operators.md)",
			zap.String("key_file", keyFile))
	case errors.Is(err, crypto.ErrKeyFileOpen):
		return nil, fmt.Errorf("audit key ring: %w (audit.key_file_allow_open_mode)", err)
	case err != nil:
		return nil, fmt.Errorf("audit key ring: %w", err)
	}
	keys, err := ring.Ed25519(audit.KeyPurpose)
	if err != nil {
		return nil, fmt.Errorf("audit key ring: %w", err)
	}
	signer, err := audit.NewSigner(cfg.Origin, keys)
	if err != nil {
		return nil, err
	}
	if latest != nil {
		if _, err := signer.Open(latest.Note); err != nil {
			return nil, fmt.Errorf("audit key ring: the ring (%s) and audit.origin %q do not verify the log's latest checkpoint "+
				"(size %d): restore the ring and origin the log was set up with: %w", ring.Source, cfg.Origin, latest.Size, err)
		}
	}
	log.Info("audit log ready", zap.String("origin", cfg.Origin), zap.String("signing_key", keys.Active),
		zap.String("signing_verifier_key", signer.SigningVerifierKey()), zap.Strings("verifier_keys", signer.VerifierKeys()))
	return signer, nil
}

// openWitness opens the witness file path (none: nil, with a warning) and
// checks that the log in st extends the checkpoint it keeps, else the
// start stops: the end of the log was cut off (or the log replaced) in the
// database. Then it advances the witness to the log's latest checkpoint.
func openWitness(ctx context.Context, path string, signer *audit.Signer, st *sqlstore.Store, log *zap.Logger) (*audit.Witness, error) {
	if path == "" {
		log.Warn("no audit witness file (set data_dir or audit.witness_file): the end of the audit log cut off in the database " +
			"is found only by the verify of clients that remember a checkpoint (docs/operators.md)")
		return nil, nil
	}
	wit, err := audit.OpenWitness(path, signer)
	if err != nil {
		return nil, fmt.Errorf("audit witness: %w; if the log's key ring or audit.origin were replaced on purpose, "+
			"move the file away and start again", err)
	}
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit witness: read the log: %w", err)
	}
	kept := wit.Latest()
	switch {
	case kept == nil && latest != nil:
		log.Warn("audit witness file absent: it starts again from the database's latest checkpoint; expected at the first start "+
			"with a witness or after the file was removed to accept a database restored from a backup, otherwise find out who removed it: "+
			"records cut off the end of the log before now go unnoticed here",
			zap.String("witness_file", path), zap.Int64("size", latest.Size))
	case kept != nil:
		p, err := wit.Check(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("audit witness: read the log: %w", err)
		}
		if p != nil {
			log.Error("the audit log in the database does not extend the checkpoint kept in the witness file: its end was cut off "+
				"or it was replaced; the audit component does not start. If the database was restored from a backup on purpose, "+
				"move the witness file away and start again (docs/operators.md, \"Witness\")",
				zap.String("witness_file", path), zap.Int64("witnessed_size", kept.Size), zap.String("problem", p.What))
			return nil, fmt.Errorf("audit log cut off or replaced: %s; if the database was restored from a backup on purpose, "+
				"move %s away and start again", p.What, path)
		}
	}
	if latest != nil {
		advanceWitness(wit, st, *latest, log)
	}
	if c := wit.Latest(); c != nil {
		log.Info("audit witness", zap.String("witness_file", path), zap.Int64("size", c.Size))
	}
	return wit, nil
}

// advanceWitness makes c the checkpoint the witness keeps; a log that no
// longer extends the one kept, or a file that cannot be written, is logged
// as an error (and the witness keeps the one it had: verify reports it).
func advanceWitness(wit *audit.Witness, st *sqlstore.Store, c audit.Checkpoint, log *zap.Logger) {
	if wit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := wit.Advance(ctx, st, c)
	switch {
	case err != nil:
		log.Error("audit witness file not updated", zap.String("witness_file", wit.Path()), zap.Int64("size", c.Size), zap.Error(err))
	case p != nil:
		log.Error("the audit log no longer extends the checkpoint kept in the witness file: its end was cut off or it was replaced "+
			"in the database; run uias ctl audit verify", zap.String("witness_file", wit.Path()), zap.Int64("size", c.Size),
			zap.String("problem", p.What))
	}
}

// witnessMetrics: whether the log extends the witnessed checkpoint (alert
// on 1) and its size.
type witnessMetrics struct {
	problem prometheus.Gauge
	size    prometheus.Gauge
}

func newWitnessMetrics(reg prometheus.Registerer) *witnessMetrics {
	m := &witnessMetrics{
		problem: prometheus.NewGauge(prometheus.GaugeOpts{Name: "uias_audit_witness_problem",
			Help: "1 when the audit log in the database no longer extends the checkpoint kept in audit.witness_file (its end cut off or the log replaced; the log line says what), else 0."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "uias_audit_witness_size",
			Help: "Tree size of the checkpoint kept in audit.witness_file."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.problem, m.size} {
			_ = reg.Register(c)
		}
	}
	return m
}

// runWitness runs witnessPass every interval: the witness follows the
// checkpoints other replicas sign (PostgreSQL), and a log cut off while
// the process runs is found without a start or a verify.
func runWitness(ctx context.Context, wit *audit.Witness, st audit.Store, every time.Duration, log *zap.Logger, m *witnessMetrics) {
	t := time.NewTicker(every)
	defer t.Stop()
	bad := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bad = witnessPass(ctx, wit, st, log, m, bad)
	}
}

// witnessPass advances the witness to the log's latest checkpoint and
// checks that the log extends it. A problem is logged as an error when it
// is new (bad: it was found by the previous pass already) and sets
// uias_audit_witness_problem; it returns whether there is one.
func witnessPass(ctx context.Context, wit *audit.Witness, st audit.Store, log *zap.Logger, m *witnessMetrics, bad bool) bool {
	latest, err := st.LatestCheckpoint(ctx)
	var p *audit.Problem
	if err == nil && latest != nil {
		p, err = wit.Advance(ctx, st, *latest)
	}
	if err == nil && p == nil {
		p, err = wit.Check(ctx, st)
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("audit witness: cannot check the log now; trying again", zap.String("witness_file", wit.Path()), zap.Error(err))
		}
		return bad
	}
	if c := wit.Latest(); c != nil {
		m.size.Set(float64(c.Size))
	}
	if p == nil {
		if bad {
			log.Info("audit log extends the witnessed checkpoint again", zap.String("witness_file", wit.Path()))
		}
		m.problem.Set(0)
		return false
	}
	m.problem.Set(1)
	if !bad {
		log.Error("the audit log in the database no longer extends the checkpoint kept in the witness file: its end was cut off "+
			"or it was replaced; run uias ctl audit verify", zap.String("witness_file", wit.Path()), zap.String("problem", p.What))
	}
	return true
}

// Settings returns the audit section of cfg (nil if cfg has none).
func Settings(cfg *config.Config) *Config {
	c, _ := cfg.Section(Name).(*Config)
	return c
}

// retentionMetrics tell whether retention works: failures (alert on any
// increase: records past retention stay in the database until it works)
// and the time of the last pass that archived all it had to.
type retentionMetrics struct {
	failures prometheus.Counter
	lastOK   prometheus.Gauge
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	m := &retentionMetrics{
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_retention_failures_total",
			Help: "Retention passes that could not archive the records past audit.retention (e.g. audit.archive_dir not writable); the records stay stored."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "uias_audit_retention_last_success_timestamp_seconds",
			Help: "When a retention pass last archived everything past audit.retention (Unix time)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.failures, m.lastOK} {
			_ = reg.Register(c)
		}
	}
	return m
}

// runRetention archives and removes the records older than the retention,
// of the own log and of the peer logs held (origins), at start and every
// check.
func runRetention(ctx context.Context, l *audit.Log, origins *audit.Origins, r audit.Retention, every time.Duration, log *zap.Logger,
	m *retentionMetrics) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		retentionPass(ctx, l, r, log, m, time.Now())
		peerRetentionPass(ctx, l, origins, r, log, m, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionPass is one pass of runRetention. A failure removes nothing: it
// is logged as an error naming the archive directory, and counted.
func retentionPass(ctx context.Context, l *audit.Log, r audit.Retention, log *zap.Logger, m *retentionMetrics, now time.Time) {
	arch, err := l.ApplyRetention(ctx, r, now)
	for _, a := range arch {
		log.Info("audit records archived and removed", zap.Int64("from", a.From), zap.Int64("to", a.To),
			zap.String("file", a.File), zap.String("sha256", a.SHA256))
	}
	switch {
	case err != nil && ctx.Err() == nil:
		m.failures.Inc()
		log.Error("audit retention failed: records past the retention are NOT archived and stay in the database "+
			"(nothing was removed); fix the cause, the next check tries again",
			zap.String("archive_dir", r.Dir), zap.Duration("retention", r.Keep), zap.Error(err))
	case err == nil:
		m.lastOK.Set(float64(now.Unix()))
	}
}

// peerRetentionPass applies the retention to the peer logs held (ADR 0029
// amendment 2). A log that does not verify, or whose keys are not
// configured, keeps its records: logged as an error and counted, as a
// failed pass of the own log.
func peerRetentionPass(ctx context.Context, l *audit.Log, origins *audit.Origins, r audit.Retention, log *zap.Logger, m *retentionMetrics,
	now time.Time) {
	arch, err := origins.ApplyRetention(ctx, l, r, now)
	for _, a := range arch {
		log.Info("peer audit records archived and removed", zap.Int64("from", a.From), zap.Int64("to", a.To),
			zap.String("file", a.File), zap.String("sha256", a.SHA256))
	}
	if err != nil && ctx.Err() == nil {
		m.failures.Inc()
		log.Error("audit retention of peer logs failed: their records past the retention stay in the database "+
			"(nothing of a failed log was removed); fix the cause, the next check tries again",
			zap.String("archive_dir", r.Dir), zap.Duration("retention", r.Keep), zap.Error(err))
	}
}

// removalAlert raises an alert (audit_removal) for every removal of records
// by the security auditor, through n (nil: alerts are off).
func removalAlert(n *analytics.Notifier, log *zap.Logger) func(actor string, from, to int64) {
	if n == nil {
		return nil
	}
	return func(actor string, from, to int64) {
		a := analytics.RemovalAlert(fmt.Sprintf("audit-removal-%d-%d", from, to), actor, from, to, time.Now().UTC())
		if err := n.Send(a); err != nil {
			log.Error("audit alert NOT raised for a removal of records", zap.String("alert", a.ID), zap.Error(err))
		}
	}
}
