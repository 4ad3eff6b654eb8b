package component

import (
	"errors"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/config"
)

// Config is the authz section of the configuration (YAML key "authz").
type Config struct {
	// MaxWait is the longest a query waits for the at_least_revision it
	// demands before answering REVISION_NOT_REACHED (default 2s).
	MaxWait time.Duration `yaml:"max_wait"`
	// CatchUpEvery is how often a replica reads changes it may have missed
	// from the store, besides the CHANGES events that normally bring them
	// within milliseconds (default 1s).
	CatchUpEvery time.Duration `yaml:"catch_up_every"`
	// SoDWatchEvery is how often authz looks for people holding both
	// roles of a separation-of-duty pair (commands.WatchSeparation; 0:
	// never; default 5m).
	SoDWatchEvery time.Duration `yaml:"sod_watch_every"`
}

// Defaults returns the authz defaults.
func Defaults() *Config {
	return &Config{MaxWait: 2 * time.Second, CatchUpEvery: time.Second, SoDWatchEvery: 5 * time.Minute}
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	b.Duration(&c.MaxWait, "UIAS_AUTHZ_MAX_WAIT", "authz-max-wait", "longest wait of a query for the revision it demands")
	b.Duration(&c.CatchUpEvery, "UIAS_AUTHZ_CATCH_UP_EVERY", "", "")
	b.Duration(&c.SoDWatchEvery, "UIAS_AUTHZ_SOD_WATCH_EVERY", "", "")
}

// Complete implements config.Section.
func (c *Config) Complete(*config.Config) {}

// Validate implements config.Section.
func (c *Config) Validate(*config.Config) error {
	var errs []error
	if c.MaxWait <= 0 || c.MaxWait > time.Minute {
		errs = append(errs, fmt.Errorf("authz.max_wait: must be between 0 and 1m, got %s", c.MaxWait))
	}
	if c.SoDWatchEvery != 0 && (c.SoDWatchEvery < time.Second || c.SoDWatchEvery > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("authz.sod_watch_every: must be 0 (never) or between 1s and 24h, got %s", c.SoDWatchEvery))
	}
	if c.CatchUpEvery < 100*time.Millisecond || c.CatchUpEvery > time.Minute {
		errs = append(errs, fmt.Errorf("authz.catch_up_every: must be between 100ms and 1m, got %s", c.CatchUpEvery))
	}
	return errors.Join(errs...)
}
