package component

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/audit"
)

// MinStreamMaxAge is the shortest AUDIT stream retention accepted: events
// wait at least a week for an audit component that is down.
const MinStreamMaxAge = 7 * 24 * time.Hour

// Config is the audit section of the configuration (YAML key "audit").
type Config struct {
	// Origin names the log: the first line of its checkpoints and the name
	// of its signing keys (letters, digits, '.', '_', '/', '-'). Give each
	// centre's log its own (default "uias.audit").
	Origin string `yaml:"origin"`
	// Batch is the most events stored in one transaction (2000); BatchWait
	// how long the consumer waits to fill one (500ms).
	Batch     int           `yaml:"batch"`
	BatchWait time.Duration `yaml:"batch_wait"`
	// CheckpointEvery and CheckpointInterval: a signed checkpoint follows
	// every CheckpointEvery records (1000), or CheckpointInterval (10s)
	// after the previous one when records came since.
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// StreamMaxAge is the retention of the JetStream AUDIT stream the
	// component applies at start (168h, at least 168h): how long events
	// wait for an audit component that is down. 0 leaves the stream as it
	// is (e.g. set by an operator; unlimited by default).
	StreamMaxAge time.Duration `yaml:"stream_max_age"`
	// KeyFile is the key ring file whose signing keys sign the checkpoints
	// (default <data_dir>/keyring.json, identity's ring in monolithic
	// mode); KeyRing (UIAS_KEYRING, environment only) takes precedence.
	KeyFile              string `yaml:"key_file"`
	KeyRing              string `yaml:"-"`
	KeyFileAllowOpenMode bool   `yaml:"key_file_allow_open_mode"`
	// WitnessFile keeps the latest checkpoint outside the database
	// (default <data_dir>/audit-witness.note; none without a data_dir): a
	// log that does not extend it stops the start, and verify reports it.
	WitnessFile string `yaml:"witness_file"`
	// Retention is how long stored records stay (8760h = 1 year; 0 keeps
	// them forever). Older records are archived to files in ArchiveDir
	// (default <data_dir>/audit-archive) and then removed, checked every
	// RetentionCheck (1h).
	Retention      time.Duration `yaml:"retention"`
	ArchiveDir     string        `yaml:"archive_dir"`
	RetentionCheck time.Duration `yaml:"retention_check"`
	// MinRemovalAge: the security auditor may not remove records younger
	// than this from the database (4380h, six months: the Cybersecurity
	// Law, art. 21, keeps network logs at least that long; 0: no floor).
	// A retention shorter than it is refused.
	MinRemovalAge time.Duration `yaml:"min_removal_age"`
	// BackupReminder: when the security auditor has not backed up the log
	// (uias ctl audit backup) for this long, uias ctl login reminds them
	// (720h = 30 days; 0: no reminder).
	BackupReminder time.Duration `yaml:"backup_reminder"`
	// PDFFont is the TrueType font file of the Chinese (CJK) text of PDF
	// exports and reports (default Debian's fonts-droid-fallback,
	// audit.DefaultPDFFont); PDFLatinFont that of all other text (default
	// DejaVu Sans of fonts-dejavu-core, audit.DefaultPDFLatinFont).
	PDFFont      string `yaml:"pdf_font"`
	PDFLatinFont string `yaml:"pdf_latin_font"`
	// Reports are the scheduled reports (reports.go).
	Reports ReportsConfig `yaml:"reports"`
	// Analytics: login analytics and alerts (analytics.go).
	Analytics AnalyticsConfig `yaml:"analytics"`
	// Share (a level-2 centre): publish this centre's log, every record
	// and checkpoint as stored, to its AUDIT_LOG stream, which level 1
	// sources (ADR 0029).
	Share bool `yaml:"share"`
	// Peers (level 1): the level-2 centres whose shared logs this centre
	// receives and keeps per origin (ADR 0029).
	Peers []PeerConfig `yaml:"peers"`
}

// PeerConfig is a level-2 centre whose log level 1 receives.
type PeerConfig struct {
	// Centre is the centre's name: its JetStream domain, as in
	// sync.peers[].name.
	Centre string `yaml:"centre"`
	// Origin is its audit.origin (the name its checkpoints carry).
	Origin string `yaml:"origin"`
	// VerifierKeys verify its checkpoints ("<origin>+<hash>+<key>", as
	// its "audit log ready" log line and uias ctl audit checkpoint list
	// them); without them its checkpoints are received but verify
	// reports them unverified.
	VerifierKeys []string `yaml:"verifier_keys"`
	// MaxBytes and MaxAge bound the stream AUDIT_<PEER> at level 1 (0:
	// DefaultPeerMaxBytes, DefaultPeerMaxAge): full, it takes no more
	// (they wait in the peer's AUDIT_LOG), so a peer cannot fill level
	// 1's NATS store (review sec28b M3).
	MaxBytes int64         `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
	// SkipGapAfter: records missing before the next one received (lost
	// from AUDIT_<PEER>, e.g. aged out while level 1 was down) are waited
	// for this long (0: DefaultSkipGapAfter), then skipped: logged, counted
	// and recorded in this centre's own log (audit.peer_log,
	// AUDIT_PEER_LOG_GAP), never retried forever.
	SkipGapAfter time.Duration `yaml:"skip_gap_after"`
}

// Defaults of audit.peers[] (sec28b M3).
const (
	DefaultPeerMaxBytes = 1 << 30
	DefaultPeerMaxAge   = 7 * 24 * time.Hour
	DefaultSkipGapAfter = time.Hour
	minPeerMaxBytes     = 1 << 20
)

func (p PeerConfig) maxBytes() int64 { return cmp.Or(p.MaxBytes, DefaultPeerMaxBytes) }

func (p PeerConfig) maxAge() time.Duration { return cmp.Or(p.MaxAge, DefaultPeerMaxAge) }

func (p PeerConfig) skipGapAfter() time.Duration { return cmp.Or(p.SkipGapAfter, DefaultSkipGapAfter) }

// DefaultBackupReminder is audit.backup_reminder's default: 30 days.
const DefaultBackupReminder = 30 * 24 * time.Hour

// MinBackupReminder is the shortest backup reminder accepted (besides 0, off).
const MinBackupReminder = time.Hour

// DefaultMinRemovalAge is audit.min_removal_age's default: 4380h, six
// months.
const DefaultMinRemovalAge = 4380 * time.Hour

// MinRetention is the shortest retention accepted (besides 0, forever).
const MinRetention = 24 * time.Hour

// centreName is a centre's name (a JetStream domain).
var centreName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Defaults returns the audit defaults.
func Defaults() *Config {
	return &Config{Origin: "uias.audit", Batch: 2000, BatchWait: 500 * time.Millisecond, CheckpointEvery: 1000,
		CheckpointInterval: 10 * time.Second, StreamMaxAge: MinStreamMaxAge, Retention: 365 * 24 * time.Hour, MinRemovalAge: DefaultMinRemovalAge,
		RetentionCheck: time.Hour, BackupReminder: DefaultBackupReminder, PDFFont: audit.DefaultPDFFont, PDFLatinFont: audit.DefaultPDFLatinFont, Reports: defaultReports(),
		Analytics: analyticsDefaults()}
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	b.String(&c.Origin, "UIAS_AUDIT_ORIGIN", "", "")
	b.Int(&c.Batch, "UIAS_AUDIT_BATCH", "", "")
	b.Duration(&c.BatchWait, "UIAS_AUDIT_BATCH_WAIT", "", "")
	b.Int(&c.CheckpointEvery, "UIAS_AUDIT_CHECKPOINT_EVERY", "", "")
	b.Duration(&c.CheckpointInterval, "UIAS_AUDIT_CHECKPOINT_INTERVAL", "", "")
	b.Duration(&c.StreamMaxAge, "UIAS_AUDIT_STREAM_MAX_AGE", "", "")
	// The same variables as identity's: one ring for the process.
	b.String(&c.KeyFile, "UIAS_KEY_FILE", "", "")
	b.Secret(&c.KeyRing, "UIAS_KEYRING")
	b.Bool(&c.KeyFileAllowOpenMode, "UIAS_KEY_FILE_ALLOW_OPEN_MODE", "", "")
	b.String(&c.WitnessFile, "UIAS_AUDIT_WITNESS_FILE", "", "")
	b.Duration(&c.Retention, "UIAS_AUDIT_RETENTION", "", "")
	b.String(&c.ArchiveDir, "UIAS_AUDIT_ARCHIVE_DIR", "", "")
	b.Duration(&c.RetentionCheck, "UIAS_AUDIT_RETENTION_CHECK", "", "")
	b.Duration(&c.MinRemovalAge, "UIAS_AUDIT_MIN_REMOVAL_AGE", "", "")
	b.Duration(&c.BackupReminder, "UIAS_AUDIT_BACKUP_REMINDER", "", "")
	b.String(&c.PDFFont, "UIAS_AUDIT_PDF_FONT", "", "")
	b.String(&c.PDFLatinFont, "UIAS_AUDIT_PDF_LATIN_FONT", "", "")
	b.Bool(&c.Share, "UIAS_AUDIT_SHARE", "", "")
	c.Reports.bind(b)
	c.Analytics.bind(b)
}

// ArchiveDirIn is the archive directory: archive_dir, else
// <data_dir>/audit-archive.
func (c *Config) ArchiveDirIn(p *config.Config) string {
	if c.ArchiveDir != "" {
		return c.ArchiveDir
	}
	return filepath.Join(p.DataDir, "audit-archive")
}

// Complete implements config.Section. (An empty key_file means
// <data_dir>/keyring.json, resolved at start: KeyFileIn.)
func (c *Config) Complete(*config.Config) {}

// KeyFileIn is the key ring file: key_file, else <data_dir>/keyring.json.
func (c *Config) KeyFileIn(p *config.Config) string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return filepath.Join(p.DataDir, "keyring.json")
}

// WitnessFileIn is the witness file: witness_file, else
// <data_dir>/audit-witness.note, else "" (no witness).
func (c *Config) WitnessFileIn(p *config.Config) string {
	if c.WitnessFile != "" || p.DataDir == "" {
		return c.WitnessFile
	}
	return filepath.Join(p.DataDir, "audit-witness.note")
}

// Validate implements config.Section.
func (c *Config) Validate(p *config.Config) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + "." + field, Msg: fmt.Sprintf(format, a...)})
	}
	if !audit.ValidOrigin(c.Origin) {
		bad("origin", "must be 1-128 letters, digits, '.', '_', '/' or '-', starting with a letter or digit, got %q", c.Origin)
	}
	if c.Batch < 1 || c.Batch > 5000 {
		bad("batch", "must be between 1 and 5000, got %d", c.Batch)
	}
	if c.BatchWait < time.Millisecond || c.BatchWait > time.Minute {
		bad("batch_wait", "must be between 1ms and 1m, got %s", c.BatchWait)
	}
	if c.CheckpointEvery < 1 {
		bad("checkpoint_every", "must be at least 1, got %d", c.CheckpointEvery)
	}
	if c.CheckpointInterval < time.Second || c.CheckpointInterval > 24*time.Hour {
		bad("checkpoint_interval", "must be between 1s and 24h, got %s", c.CheckpointInterval)
	}
	if c.StreamMaxAge != 0 && c.StreamMaxAge < MinStreamMaxAge {
		bad("stream_max_age", "must be 0 (leave the stream as it is) or at least 168h (7 days), got %s", c.StreamMaxAge)
	}
	if c.Retention != 0 && c.Retention < MinRetention {
		bad("retention", "must be 0 (keep forever) or at least 24h, got %s", c.Retention)
	}
	if c.MinRemovalAge < 0 {
		bad("min_removal_age", "must be 0 (no floor) or more, got %s", c.MinRemovalAge)
	}
	if c.Retention != 0 && c.Retention < c.MinRemovalAge {
		bad("retention", "must be 0 (keep forever) or at least audit.min_removal_age (%s): records would leave the database younger than "+
			"the security auditor may remove them; got %s", c.MinRemovalAge, c.Retention)
	}
	if c.RetentionCheck < time.Minute || c.RetentionCheck > 24*time.Hour {
		bad("retention_check", "must be between 1m and 24h, got %s", c.RetentionCheck)
	}
	if c.BackupReminder != 0 && (c.BackupReminder < MinBackupReminder || c.BackupReminder > 10*365*24*time.Hour) {
		bad("backup_reminder", "must be 0 (no reminder) or between 1h and 87600h (10 years), got %s", c.BackupReminder)
	}
	if c.Retention != 0 && c.ArchiveDir == "" && p.DataDir == "" {
		bad("archive_dir", "must not be empty when records are archived (set data_dir or audit.archive_dir)")
	}
	if c.KeyRing == "" && c.KeyFileIn(p) == "keyring.json" && p.DataDir == "" {
		bad("key_file", "must not be empty (set data_dir, audit.key_file or UIAS_KEYRING)")
	}
	if c.PDFFont == "" {
		bad("pdf_font", "must name a TrueType font file with Chinese glyphs, e.g. %s (Debian: apt-get install fonts-droid-fallback)", audit.DefaultPDFFont)
	}
	if c.PDFLatinFont == "" {
		bad("pdf_latin_font", "must name a TrueType font file with Latin glyphs, e.g. %s (Debian: apt-get install fonts-dejavu-core)", audit.DefaultPDFLatinFont)
	}
	seen := map[string]bool{c.Origin: true}
	centres := map[string]bool{}
	for i, pe := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		if !centreName.MatchString(pe.Centre) {
			bad(f+".centre", "must name the centre (its JetStream domain, as sync.peers[].name): a lowercase letter, then lowercase letters, digits or '-', got %q", pe.Centre)
		} else if centres[audit.PeerStreamFor(pe.Centre)] {
			bad(f+".centre", "%q is named twice (or as another peer's stream %s): each centre once", pe.Centre, audit.PeerStreamFor(pe.Centre))
		}
		centres[audit.PeerStreamFor(pe.Centre)] = true
		if pe.MaxBytes != 0 && pe.MaxBytes < minPeerMaxBytes {
			bad(f+".max_bytes", "must be 0 (%d) or at least %d, got %d", DefaultPeerMaxBytes, minPeerMaxBytes, pe.MaxBytes)
		}
		if pe.MaxAge != 0 && pe.MaxAge < time.Hour {
			bad(f+".max_age", "must be 0 (%s) or at least 1h, got %s", DefaultPeerMaxAge, pe.MaxAge)
		}
		if pe.SkipGapAfter != 0 && pe.SkipGapAfter < time.Minute {
			bad(f+".skip_gap_after", "must be 0 (%s) or at least 1m, got %s", DefaultSkipGapAfter, pe.SkipGapAfter)
		}
		if !audit.ValidOrigin(pe.Origin) {
			bad(f+".origin", "must be the centre's audit.origin, got %q", pe.Origin)
		} else if seen[pe.Origin] {
			bad(f+".origin", "%q is this centre's own origin or another peer's: each centre's log needs its own audit.origin", pe.Origin)
		}
		seen[pe.Origin] = true
		if _, err := audit.VerifiersFromKeys(pe.VerifierKeys); err != nil {
			bad(f+".verifier_keys", "%v", err)
		}
	}
	c.Reports.validate(bad)
	if err := c.Analytics.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
