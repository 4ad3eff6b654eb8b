package component

import (
	"strings"
	"testing"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/ticket"
)

// homesSection is a config section carrying the centre settings (sync's).
type homesSection struct{ h *centre.Homes }

func (homesSection) Bind(*config.Binder)           {}
func (homesSection) Complete(*config.Config)       {}
func (homesSection) Validate(*config.Config) error { return nil }
func (s homesSection) CentreHomes() *centre.Homes  { return s.h }
func withHomes(h *centre.Homes) *config.Config {
	return &config.Config{DataDir: "d", Sections: map[string]config.Section{"sync": homesSection{h}}}
}

// TestCentreNameOfTheCentreSettings (rr29 B6): one centre, one name.
// ticket.centre left at its default is sync.centre; a ticket.centre other
// than sync.centre, a peer that is not a centre of sync's settings, and a
// name outside the one centre-name rule are configuration errors at the
// start, naming the setting.
func TestCentreNameOfTheCentreSettings(t *testing.T) {
	l2a := &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{"org-a": "l2a"}}
	l1 := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{"org-a": "l2a", "org-b": "l2b"}}
	peer := func(name string) PeerConfig {
		return PeerConfig{Name: name, URL: "https://sso." + name + ".example", PublicKeyFile: "/etc/uias/" + name + ".pub"}
	}

	// Defaulted from the centre settings; a single centre keeps c1.
	c := Defaults()
	p := withHomes(l2a)
	c.Complete(p)
	if c.Centre != "l2a" {
		t.Fatalf("ticket.centre %q, want sync.centre l2a", c.Centre)
	}
	c.Peers = []PeerConfig{peer("l1")}
	if err := c.Validate(p); err != nil {
		t.Fatalf("level 2 with level 1 as its peer: %v", err)
	}
	c = Defaults()
	c.Complete(withHomes(nil))
	if c.Centre != ticket.DefaultCentre {
		t.Fatalf("single centre: ticket.centre %q", c.Centre)
	}
	// Level 1 and its level-2 centres.
	c = Defaults()
	c.Centre, c.Peers = "l1", []PeerConfig{peer("l2a"), peer("l2b")}
	if err := c.Validate(withHomes(l1)); err != nil {
		t.Fatalf("level 1 with its level-2 centres: %v", err)
	}

	for name, tc := range map[string]struct {
		homes  *centre.Homes
		centre string
		peers  []PeerConfig
		field  string
	}{
		"centre not sync's":          {l2a, "l2b", nil, "ticket.centre"},
		"centre spelled otherwise":   {l2a, "L2A", nil, "ticket.centre"},
		"centre upper case (single)": {nil, "C1", nil, "ticket.centre"},
		"peer unknown to sync":       {l2a, "l2a", []PeerConfig{peer("l2b")}, "ticket.peers[0].name"},
		"peer unknown at level 1":    {l1, "l1", []PeerConfig{peer("l2a"), peer("l3")}, "ticket.peers[1].name"},
		"peer spelled otherwise":     {l1, "l1", []PeerConfig{peer("L2A")}, "ticket.peers[0].name"},
		"peer with a dash":           {nil, "c1", []PeerConfig{peer("l2-a")}, "ticket.peers[0].name"},
	} {
		c := Defaults()
		c.Centre, c.Peers = tc.centre, tc.peers
		err := c.Validate(withHomes(tc.homes))
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.field)
		}
	}
}
