package component

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
)

// Config is the sync section of the configuration (YAML key "sync").
type Config struct {
	// Centre is this centre's name, which is also the JetStream domain of
	// its NATS (jetstream.domain in nats-server.conf). Empty: a
	// single-centre deployment; the component then applies nothing and
	// every write is local.
	Centre string `yaml:"centre"`
	// Level is 1 (the top centre) or 2.
	Level int `yaml:"level"`
	// Parent is a level-2 centre's level-1 centre (its JetStream domain).
	Parent string `yaml:"parent"`
	// HomeSubtrees are the root org ids of the subtrees this centre is home
	// for. A level-1 centre is also home for every org outside the
	// subtrees of its peers.
	HomeSubtrees []string `yaml:"home_subtrees"`
	// Peers are, at level 1, the level-2 centres and their subtrees (YAML
	// only).
	Peers []Peer `yaml:"peers"`
	// Batch is the most changes applied in one transaction (256).
	Batch int `yaml:"batch"`
	// Retry is the first wait after a link fails (200ms, doubling to 5s).
	Retry time.Duration `yaml:"retry"`
	// SourceRetry: a peer stream's source that has not heard from the
	// peer for this long is restarted (5s; see services/sync/applier
	// source.go).
	SourceRetry time.Duration `yaml:"source_retry"`
	// Provision: provisioning into business systems (provision_config.go).
	Provision ProvisionConfig `yaml:"provision"`
}

// Peer is a level-2 centre as level 1 knows it.
type Peer struct {
	Name     string   `yaml:"name"`
	Subtrees []string `yaml:"subtrees"`
}

// Defaults returns the sync defaults (a single centre).
func Defaults() *Config {
	return &Config{Level: 1, Batch: 256, Retry: 200 * time.Millisecond, SourceRetry: 5 * time.Second, Provision: provisionDefaults()}
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	b.String(&c.Centre, "UIAS_SYNC_CENTRE", "", "")
	b.Int(&c.Level, "UIAS_SYNC_LEVEL", "", "")
	b.String(&c.Parent, "UIAS_SYNC_PARENT", "", "")
	b.List(&c.HomeSubtrees, "UIAS_SYNC_HOME_SUBTREES", "", "")
	b.Int(&c.Batch, "UIAS_SYNC_BATCH", "", "")
	b.Duration(&c.Retry, "UIAS_SYNC_RETRY", "", "")
	b.Duration(&c.SourceRetry, "UIAS_SYNC_SOURCE_RETRY", "", "")
	c.Provision.bind(b)
}

// Complete implements config.Section.
func (c *Config) Complete(*config.Config) {}

// Validate implements config.Section.
func (c *Config) Validate(p *config.Config) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + "." + field, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Batch < 1 || c.Batch > 5000 {
		bad("batch", "must be between 1 and 5000, got %d", c.Batch)
	}
	if c.Retry < 10*time.Millisecond || c.Retry > time.Minute {
		bad("retry", "must be between 10ms and 1m, got %s", c.Retry)
	}
	if c.SourceRetry < time.Second || c.SourceRetry > 10*time.Minute {
		bad("source_retry", "must be between 1s and 10m, got %s", c.SourceRetry)
	}
	errs = append(errs, c.Provision.validate()...)
	if c.Centre == "" {
		if c.Parent != "" || len(c.HomeSubtrees) > 0 || len(c.Peers) > 0 || c.Level != 1 {
			bad("centre", "is required with sync.level 2, parent, home_subtrees or peers (the centre's name, also its JetStream domain)")
		}
		return errors.Join(errs...)
	}
	if !centre.ValidName(c.Centre) {
		bad("centre", "must be %s, got %q", centre.NameRule, c.Centre)
	}
	switch c.Level {
	case 1:
		if c.Parent != "" {
			bad("parent", "must be empty at level 1, got %q", c.Parent)
		}
	case 2:
		if !centre.ValidName(c.Parent) || c.Parent == c.Centre {
			bad("parent", "must name the level-1 centre (not this one) at level 2, got %q", c.Parent)
		}
		if len(c.Peers) > 0 {
			bad("peers", "are set at level 1 only (a level-2 centre links to its parent)")
		}
		if len(c.HomeSubtrees) == 0 {
			bad("home_subtrees", "must list the root org ids of the subtrees this level-2 centre is home for")
		}
	default:
		bad("level", "must be 1 or 2, got %d", c.Level)
	}
	if p.NATS.URL == "" {
		bad("centre", "needs nats.url: centres link their NATS servers as leaf nodes (docs/operators.md, Two-level centres)")
	}
	seen := map[string]string{}
	claim := func(field, org, who string) {
		if org == "" {
			bad(field, "has an empty org id")
			return
		}
		if prev, ok := seen[org]; ok && prev != who {
			bad(field, "org %s is the home subtree of both %s and %s", org, prev, who)
		}
		seen[org] = who
	}
	for _, o := range c.HomeSubtrees {
		claim("home_subtrees", o, c.Centre)
	}
	names := []string{c.Centre}
	for i, pe := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		if !centre.ValidName(pe.Name) || slices.Contains(names, pe.Name) {
			bad(f+".name", "must be a centre name used once (%s), got %q", centre.NameRule, pe.Name)
		}
		names = append(names, pe.Name)
		for _, o := range pe.Subtrees {
			claim(f+".subtrees", o, pe.Name)
		}
	}
	return errors.Join(errs...)
}

// CentreHomes implements centre.Provider: nil for a single centre.
func (c *Config) CentreHomes() *centre.Homes {
	if c.Centre == "" {
		return nil
	}
	h := &centre.Homes{Self: c.Centre, Level: c.Level, Parent: c.Parent, Subtrees: map[string]string{}}
	for _, o := range c.HomeSubtrees {
		h.Subtrees[o] = c.Centre
	}
	for _, pe := range c.Peers {
		for _, o := range pe.Subtrees {
			h.Subtrees[o] = pe.Name
		}
	}
	return h
}
