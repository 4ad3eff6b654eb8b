package centre_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
)

func TestHomes(t *testing.T) {
	l1 := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{"a": "l2a", "b": "l2b", "a2": "l1"}}
	l2 := &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{"a": "l2a"}}
	for _, tc := range []struct {
		h    *centre.Homes
		path string
		want string
	}{
		{l1, "/root/", "l1"},
		{l1, "/root/a/", "l2a"},
		{l1, "/root/a/x/y/", "l2a"},
		{l1, "/root/a/a2/", "l1"}, // a deeper root wins
		{l1, "/root/b/z/", "l2b"},
		{l2, "/root/", "l1"},
		{l2, "/root/a/x/", "l2a"},
		{l2, "/root/b/", "l1"}, // unknown to l2a: the level-1 centre decides
	} {
		if got := tc.h.HomeOfPath(tc.path); got != tc.want {
			t.Errorf("%s: HomeOfPath(%s) = %s, want %s", tc.h.Self, tc.path, got, tc.want)
		}
	}
	if err := l2.CheckOrg("/root/a/x/", "user u1"); err != nil {
		t.Errorf("own subtree refused: %v", err)
	}
	err := l2.CheckOrg("/root/", "org root")
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.FailedPrecondition || ae.Reason != centre.ReasonElsewhere ||
		!strings.Contains(ae.Message, `"l1"`) {
		t.Fatalf("write elsewhere: %v", err)
	}
	if err := l2.CheckGlobal("application x"); err == nil || !strings.Contains(err.Error(), `"l1"`) {
		t.Errorf("global write at level 2: %v", err)
	}
	if err := l1.CheckGlobal("application x"); err != nil {
		t.Errorf("global write at level 1: %v", err)
	}
	var none *centre.Homes
	if err := none.CheckOrg("/x/", "org x"); err != nil || none.CheckGlobal("app") != nil {
		t.Errorf("single centre refused a write: %v", err)
	}
}

type section struct{ h *centre.Homes }

func (section) Bind(*config.Binder)           {}
func (section) Complete(*config.Config)       {}
func (section) Validate(*config.Config) error { return nil }
func (s section) CentreHomes() *centre.Homes  { return s.h }

func TestFromConfig(t *testing.T) {
	if centre.FromConfig(&config.Config{}) != nil {
		t.Fatal("no sections: want a single centre")
	}
	h := &centre.Homes{Self: "l1", Level: 1}
	c := &config.Config{Sections: map[string]config.Section{"a": section{}, "sync": section{h}}}
	if centre.FromConfig(c) != h {
		t.Fatal("the provider's settings were not found")
	}
}

// TestValidName (rr29 B6): the one rule of a centre's name, which
// sync.centre, ticket.centre and the peers' names follow.
func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"l1": true, "l2a": true, "c1": true, "abcdefghijklmnop": true,
		"": false, "L1": false, "1l": false, "l-1": false, "l.1": false, "abcdefghijklmnopq": false} {
		if centre.ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}
