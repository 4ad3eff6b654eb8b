package component_test

import (
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/component"
)

func TestConfigValidate(t *testing.T) {
	withNATS := &config.Config{NATS: config.NATS{URL: "nats://127.0.0.1:4222"}}
	for _, tc := range []struct {
		name string
		c    func(c *component.Config)
		p    *config.Config
		want string // "" = valid
	}{
		{"single centre", func(*component.Config) {}, &config.Config{}, ""},
		{"level 1", func(c *component.Config) {
			c.Centre, c.Peers = "l1", []component.Peer{{Name: "l2a", Subtrees: []string{"a"}}}
		}, withNATS, ""},
		{"level 2", func(c *component.Config) { c.Centre, c.Level, c.Parent, c.HomeSubtrees = "l2a", 2, "l1", []string{"a"} }, withNATS, ""},
		{"level 2 without centre", func(c *component.Config) { c.Level, c.Parent = 2, "l1" }, withNATS, "sync.centre: is required"},
		{"bad name", func(c *component.Config) { c.Centre = "L1.x" }, withNATS, "sync.centre: must be"},
		{"no NATS", func(c *component.Config) { c.Centre = "l1" }, &config.Config{}, "needs nats.url"},
		{"level 3", func(c *component.Config) { c.Centre, c.Level = "l1", 3 }, withNATS, "sync.level: must be 1 or 2"},
		{"level 2 without parent", func(c *component.Config) { c.Centre, c.Level, c.HomeSubtrees = "l2a", 2, []string{"a"} }, withNATS,
			"sync.parent: must name the level-1 centre"},
		{"level 2 without subtrees", func(c *component.Config) { c.Centre, c.Level, c.Parent = "l2a", 2, "l1" }, withNATS,
			"sync.home_subtrees: must list"},
		{"subtree claimed twice", func(c *component.Config) {
			c.Centre, c.HomeSubtrees, c.Peers = "l1", []string{"a"}, []component.Peer{{Name: "l2a", Subtrees: []string{"a"}}}
		}, withNATS, "org a is the home subtree of both l1 and l2a"},
		{"peer twice", func(c *component.Config) {
			c.Centre, c.Peers = "l1", []component.Peer{{Name: "l2a"}, {Name: "l2a"}}
		}, withNATS, "sync.peers[1].name"},
		{"batch", func(c *component.Config) { c.Batch = 0 }, &config.Config{}, "sync.batch"},
		{"dead letters wait for a person", func(c *component.Config) { c.Provision.DeadLetterRetry = 0 }, &config.Config{}, ""},
		{"dead letter retry too short", func(c *component.Config) { c.Provision.DeadLetterRetry = time.Second }, &config.Config{},
			"sync.provision.dead_letter_retry: must be between 1m0s and 168h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := component.Defaults()
			tc.c(c)
			err := c.Validate(tc.p)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestHomesAndLinks(t *testing.T) {
	c := component.Defaults()
	if c.CentreHomes() != nil || c.Links() != nil {
		t.Fatal("a single centre has homes or links")
	}
	c.Centre, c.HomeSubtrees, c.Peers = "l1", []string{"x"}, []component.Peer{{Name: "l2a", Subtrees: []string{"a"}}, {Name: "l2b"}}
	h := c.CentreHomes()
	if h.HomeOfPath("/r/a/") != "l2a" || h.HomeOfPath("/r/x/") != "l1" || h.HomeOfPath("/r/") != "l1" {
		t.Fatalf("homes %+v", h)
	}
	var _ centre.Provider = c
	links := c.Links()
	if len(links) != 3 || links[0].Stream != "CHANGES" || links[1].Stream != "SYNC_L2A" || links[2].Origin != "l2b" ||
		links[1].Filters[0] != applier.Up[0] {
		t.Fatalf("level-1 links %+v", links)
	}
	c2 := component.Defaults()
	c2.Centre, c2.Level, c2.Parent, c2.HomeSubtrees = "l2-b", 2, "l1", []string{"b"}
	links = c2.Links()
	if len(links) != 2 || links[1].Stream != "SYNC_L1" || links[1].Filters[0] != applier.Down[0] || links[0].Origin != "l2-b" {
		t.Fatalf("level-2 links %+v", links)
	}
}
