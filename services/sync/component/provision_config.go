package component

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
)

// ProvisionConfig is the sync.provision section: provisioning into
// business systems (subscriptions are data, made with the admin API).
type ProvisionConfig struct {
	// Enabled runs the delivery engine (true). Off: subscriptions can be
	// managed, nothing is delivered.
	Enabled bool `yaml:"enabled"`
	// Timeout bounds one delivery to a business system (10s).
	Timeout time.Duration `yaml:"timeout"`
	// RetryFirst is the first wait after a failed delivery (1s), doubling
	// up to RetryMax (5m).
	RetryFirst time.Duration `yaml:"retry_first"`
	RetryMax   time.Duration `yaml:"retry_max"`
	// MaxAttempts before a delivery becomes a dead letter (10).
	MaxAttempts int `yaml:"max_attempts"`
	// DeadLetterRetry puts a dead letter back in its queue this long after
	// it died (30m; 0: dead letters wait for `uias ctl sync retry`).
	DeadLetterRetry time.Duration `yaml:"dead_letter_retry"`
	// KeyFile is the key ring that seals the subscriptions' secrets; empty:
	// the deployment's ring as identity reads it.
	KeyFile string `yaml:"key_file"`
}

func provisionDefaults() ProvisionConfig {
	return ProvisionConfig{Enabled: true, Timeout: 10 * time.Second, RetryFirst: time.Second, RetryMax: 5 * time.Minute, MaxAttempts: 10,
		DeadLetterRetry: 30 * time.Minute}
}

func (c *ProvisionConfig) bind(b *config.Binder) {
	b.Bool(&c.Enabled, "UIAS_SYNC_PROVISION", "", "")
	b.Duration(&c.Timeout, "UIAS_SYNC_PROVISION_TIMEOUT", "", "")
	b.Duration(&c.RetryFirst, "UIAS_SYNC_PROVISION_RETRY_FIRST", "", "")
	b.Duration(&c.RetryMax, "UIAS_SYNC_PROVISION_RETRY_MAX", "", "")
	b.Int(&c.MaxAttempts, "UIAS_SYNC_PROVISION_MAX_ATTEMPTS", "", "")
	b.Duration(&c.DeadLetterRetry, "UIAS_SYNC_PROVISION_DEAD_LETTER_RETRY", "", "")
	b.String(&c.KeyFile, "UIAS_SYNC_PROVISION_KEY_FILE", "", "")
}

func (c *ProvisionConfig) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + ".provision." + field, Msg: fmt.Sprintf(format, a...)})
	}
	between := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(field, "must be between %s and %s, got %s", lo, hi, d)
		}
	}
	between("timeout", c.Timeout, 100*time.Millisecond, 5*time.Minute)
	between("retry_first", c.RetryFirst, 10*time.Millisecond, time.Hour)
	between("retry_max", c.RetryMax, c.RetryFirst, 24*time.Hour)
	if c.MaxAttempts < 1 || c.MaxAttempts > 1000 {
		bad("max_attempts", "must be between 1 and 1000, got %d", c.MaxAttempts)
	}
	if c.DeadLetterRetry != 0 {
		between("dead_letter_retry", c.DeadLetterRetry, time.Minute, 7*24*time.Hour)
	}
	return errs
}

// ringSource is implemented by the section that says where the
// deployment's key ring is (identity's).
type ringSource interface {
	KeyRingSource() crypto.RingSource
}

// RingSource is where provisioning reads the key ring that seals its
// secrets: provision.key_file, else the deployment's ring as identity
// reads it, else <data_dir>/keyring.json.
func (c *ProvisionConfig) RingSource(p *config.Config) crypto.RingSource {
	if c.KeyFile != "" {
		return crypto.RingSource{File: c.KeyFile}
	}
	if rs, ok := p.Section("identity").(ringSource); ok {
		return rs.KeyRingSource()
	}
	return crypto.RingSource{File: filepath.Join(p.DataDir, "keyring.json")}
}
