// Package centre says which centre of a multi-centre deployment is the
// home of an org subtree: the one centre that accepts its writes. Other
// centres hold replicas (fed by the sync component) and refuse writes to
// it with HOME_CENTRE_ELSEWHERE, naming the home centre.
//
// The settings belong to the sync component's config section; a component
// that writes orgs or people (identity) reads them with FromConfig, without
// importing the sync component: any section that implements Provider
// supplies them. A nil *Homes is a single-centre deployment: every write is
// local.
package centre

import (
	"fmt"
	"slices"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/config"
)

// ReasonElsewhere is the reason of a write refused because the object's
// home is another centre.
const ReasonElsewhere = "HOME_CENTRE_ELSEWHERE"

// MetaHome is the ErrorInfo metadata key of a HOME_CENTRE_ELSEWHERE
// refusal that names the home centre.
const MetaHome = "home_centre"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonElsewhere, Code: apierr.FailedPrecondition, Legacy: -5,
		Doc: "the org subtree, person or global object is homed at another centre (named in the message): make the change there"})
}

// NameRule says what ValidName accepts, for configuration errors.
const NameRule = "1-16 lower-case letters or digits, starting with a letter"

// ValidName reports whether name is a centre's name (NameRule). One
// centre is named the same in every setting that names it: sync.centre
// (its JetStream domain and the suffix of its streams), ticket.centre (it
// goes into ticket values and is the issuer and audience of the peers'
// assertions, which identity compares with the centres of Homes) and the
// peers' names of the ticket, sync and audit sections. A rule per setting
// let one centre be spelled two ways ("L2A" and "l2a", or "l2-a"), which
// made every sign-in across centres fail with no configuration error.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 16 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Known reports whether name is a centre of the deployment as h knows it:
// this one, its parent, or the home of a listed subtree (at level 1, each
// level-2 centre). A nil h knows none.
func (h *Homes) Known(name string) bool {
	if h == nil || name == "" {
		return false
	}
	if name == h.Self || name == h.Parent {
		return true
	}
	for _, c := range h.Subtrees {
		if c == name {
			return true
		}
	}
	return false
}

// Homes are the centre settings of this centre.
type Homes struct {
	// Self is this centre's name, Level 1 or 2, Parent the level-1 centre
	// of a level-2 centre.
	Self   string
	Level  int
	Parent string
	// Subtrees maps the root org id of a subtree to its home centre (this
	// centre's own subtrees included). The deepest listed root above an org
	// decides; an org below none is homed at the level-1 centre.
	Subtrees map[string]string
}

// Provider is a config section that carries the centre settings (the sync
// component's).
type Provider interface {
	// CentreHomes returns the settings, or nil for a single centre.
	CentreHomes() *Homes
}

// FromConfig returns the centre settings of the process configuration: those
// of the first section (by name) implementing Provider that returns some;
// nil for a single-centre deployment.
func FromConfig(c *config.Config) *Homes {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.Sections))
	for n := range c.Sections {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if p, ok := c.Sections[n].(Provider); ok {
			if h := p.CentreHomes(); h != nil {
				return h
			}
		}
	}
	return nil
}

// Top is the level-1 centre: the home of global data (applications, roles,
// policies) and of every org outside the listed subtrees.
func (h *Homes) Top() string {
	if h.Level == 1 {
		return h.Self
	}
	return h.Parent
}

// HomeOfPath returns the home centre of the org whose materialised path
// ("/<root id>/.../<org id>/") is path.
func (h *Homes) HomeOfPath(path string) string {
	ids := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(ids) - 1; i >= 0; i-- {
		if c, ok := h.Subtrees[ids[i]]; ok && ids[i] != "" {
			return c
		}
	}
	return h.Top()
}

// Owns reports whether this centre is the home of the org at path (always
// true for a nil *Homes).
func (h *Homes) Owns(path string) bool {
	return h == nil || h.HomeOfPath(path) == h.Self
}

// CheckOrg refuses a write to something in the org at path (what names it,
// e.g. "org 0193...", "user 0193...") unless this centre is its home.
func (h *Homes) CheckOrg(path, what string) error {
	if h.Owns(path) {
		return nil
	}
	return elsewhere(what, h.HomeOfPath(path), h.Self)
}

// CheckGlobal refuses a write to global data (what names it, e.g. "application
// 0193...") unless this is the level-1 centre.
func (h *Homes) CheckGlobal(what string) error {
	if h == nil || h.Top() == h.Self {
		return nil
	}
	return elsewhere(what, h.Top(), h.Self)
}

// CheckHome refuses a write to something homed at centre home (what names
// it) unless that is this centre; an empty home is this centre.
func (h *Homes) CheckHome(home, what string) error {
	if h == nil || home == "" || home == h.Self {
		return nil
	}
	return elsewhere(what, home, h.Self)
}

func elsewhere(what, home, self string) error {
	return apierr.New(apierr.FailedPrecondition, ReasonElsewhere,
		fmt.Sprintf("%s is homed at centre %q, not at this centre (%q): make the change at %q; this centre holds a replica",
			what, home, self, home)).WithMeta(MetaHome, home)
}
